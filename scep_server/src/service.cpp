#include "pkisim/scep/service.hpp"

#include "pkisim/scep/ca_engine.hpp"
#include "pkisim/scep/ra_engine.hpp"

namespace pkisim::scep {

std::unique_ptr<scep_service> make_service(engine_options options, const timers::clock& clock) {
    if (options.server.mode_ra)
        return std::make_unique<ra_engine>(std::move(options), clock);
    return std::make_unique<ca_engine>(std::move(options), clock);
}

}  // namespace pkisim::scep
