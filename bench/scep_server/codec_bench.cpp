// SCEP codec hot path: what one PKIOperation costs the CA (keys loaded once and passed in, as
// the CA engine does). RSA-2048 fixture keys from tests/data/scep; AES-256 + SHA-256 (certmonger).
#include <array>

#include <benchmark/benchmark.h>

#include "support_pki.hpp"

namespace {
using namespace pkisim::scep;
using namespace pkisim::scep::testing;

struct world {
    authority ca = make_ca();
    client c = make_client();
    bytes request = c.pkcs_req({ca.cert.get()});
    std::array<decryption_key, 1> keys{ca.decryption()};
};
world& w() {
    static world instance;
    return instance;
}

void bm_decode_pkcs_req(benchmark::State& state) {
    for (auto _ : state) {
        auto req = decode_pki_message(w().request, w().keys);
        benchmark::DoNotOptimize(req);
    }
}
BENCHMARK(bm_decode_pkcs_req);

void bm_full_pkcs_req_to_success(benchmark::State& state) {
    std::uint64_t serial = 2;
    for (auto _ : state) {
        auto req = decode_pki_message(w().request, w().keys);
        issue_options o;
        o.validity = {test_epoch(), test_epoch() + pkisim::timers::days{365}};
        o.serial = serial++;
        o.attach_key = false;  // as the CA engine issues (crypto.hpp)
        auto cert = issue_certificate(req->csr()->csr.get(), w().ca.cert.get(), w().ca.key, o);
        auto reply = encode_cert_rep(success_for(req->context(), w().ca.cert.get(), w().ca.key,
                                                 {cert->get()}, test_epoch()));
        benchmark::DoNotOptimize(reply);
    }
}
BENCHMARK(bm_full_pkcs_req_to_success);

void bm_encode_pending(benchmark::State& state) {
    auto req = decode_pki_message(w().request, w().keys);
    const reply_context ctx = req->context();
    for (auto _ : state) {
        auto reply = encode_cert_rep(pending_for(ctx, w().ca.cert.get(), w().ca.key, test_epoch()));
        benchmark::DoNotOptimize(reply);
    }
}
BENCHMARK(bm_encode_pending);

void bm_decode_garbage(benchmark::State& state) {
    bytes bad = w().request;
    bad.back() ^= 1;
    for (auto _ : state) {
        auto req = decode_pki_message(bad, w().keys);
        benchmark::DoNotOptimize(req);
    }
}
BENCHMARK(bm_decode_garbage);
}  // namespace
