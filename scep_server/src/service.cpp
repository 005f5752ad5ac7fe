#include "pkisim/scep/service.hpp"

#include "pkisim/scep/ca_engine.hpp"

namespace pkisim::scep {

std::unique_ptr<scep_service> make_service(engine_options options, const timers::clock& clock) {
    if (options.server.mode_ra) {
        throw startup_error(exit_status::config, "`mode ra` is not supported yet (CA mode only)");
    }
    return std::make_unique<ca_engine>(std::move(options), clock);
}

}  // namespace pkisim::scep
