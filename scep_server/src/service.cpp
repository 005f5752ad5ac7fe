#include "pkisim/scep/service.hpp"

#include "pkisim/scep/ca_engine.hpp"
#include "pkisim/scep/ra_engine.hpp"

namespace pkisim::scep {

namespace {
struct plain_job final : pki_job {
    bytes der;
    http_answer answer;
};
}  // namespace

std::unique_ptr<pki_job> scep_service::pki_prepare(bytes der) {
    auto job = std::make_unique<plain_job>();
    job->der = std::move(der);
    return job;
}

void scep_service::pki_process(std::span<const std::unique_ptr<pki_job>> jobs) {
    for (const auto& j : jobs) {
        auto& job = static_cast<plain_job&>(*j);
        job.answer = pki_operation(job.der);
    }
}

http_answer scep_service::pki_finish(pki_job& job) {
    return std::move(static_cast<plain_job&>(job).answer);
}

std::unique_ptr<scep_service> make_service(engine_options options, const timers::clock& clock) {
    if (options.server.mode_ra)
        return std::make_unique<ra_engine>(std::move(options), clock);
    return std::make_unique<ca_engine>(std::move(options), clock);
}

}  // namespace pkisim::scep
