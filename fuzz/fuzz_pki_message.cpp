// decode_pki_message with the CA's keys (the server's first look at every PKIOperation), strict
// and, where strict refuses with badAlg, with --legacy-crypto. Seeds: fuzz/corpus/pki_message (fuzz_seedgen: every message type,
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
    // Strict first; `--legacy-crypto` only where strict refused with badAlg. The two modes run
    // the same code and differ only in the checks that answer badAlg for DES/MD5
    // (decode_pki_message, codec.hpp steps 3-4): a message strict accepts, or refuses for any
    // other reason, takes the same path under legacy, so decoding it again (a second RSA
    // decryption) finds nothing new. Issue 13's exec goal.
    for (const bool legacy : {false, true}) {
        scep::decode_options o;
        o.allow_legacy = legacy;
        auto r = scep::decode_pki_message({data, size}, keys, o);
        if (r)
            break;
        // Every failure maps to a wire answer (4xx or a FAILURE CertRep), never 5xx.
        const auto w = scep::to_wire(r.error());
        if (w.http_status >= 500)
            __builtin_trap();
        if (r.error().info != scep::fail_info::bad_alg)
            break;
    }
    return 0;
}
