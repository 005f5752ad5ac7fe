// decode_pki_message with the CA's keys (the server's first look at every PKIOperation), strict
// and with --legacy-crypto. Seeds: fuzz/corpus/pki_message (fuzz_seedgen: every message type,
// ciphers and digests, encrypted to the fuzz CA) and the captured client messages.
#include <array>

#include "fuzz_support.hpp"

using namespace pkisim;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const fuzz::fuzz_ca ca = [] {
        scep::load_providers(true);
        return fuzz::fuzz_ca{};
    }();
    const std::array<scep::decryption_key, 1> keys{{{ca.cert.get(), ca.key.get()}}};
    for (const bool legacy : {false, true}) {
        scep::decode_options o;
        o.allow_legacy = legacy;
        auto r = scep::decode_pki_message({data, size}, keys, o);
        if (!r) {
            // Every failure maps to a wire answer (4xx or a FAILURE CertRep), never 5xx.
            const auto w = scep::to_wire(r.error());
            if (w.http_status >= 500)
                __builtin_trap();
        }
    }
    return 0;
}
