// The client side: CertRep (decode_cert_rep, the client's key decrypts SUCCESS), GetNextCACert
// (parse_get_next_ca_cert) and GetCACert certs-only (parse_certs_only), with and without
// trusted signers. The first byte picks the decoder; the rest is the message.
// Seeds: fuzz/corpus/cert_rep (fuzz_seedgen: SUCCESS/PENDING/FAILURE CertReps from the fuzz
// CA to client1, GetNextCACert and certs-only answers).
#include <array>

#include "fuzz_support.hpp"

using namespace pkisim;

namespace {
struct state {
    fuzz::fuzz_ca ca;
    scep::evp_pkey_ptr client_key = fuzz::fixture_key("client");
    scep::x509_ptr client_cert =
        scep::make_self_signed_signer(client_key.get(), "CN=SCEP SIGNER,O=scep-client",
                                      {fuzz::fuzz_epoch(), fuzz::fuzz_epoch() + timers::days{365}});
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const state s = [] {
        scep::load_providers(true);
        return state{};
    }();
    if (size == 0)
        return 0;
    const scep::byte_view der{data + 1, size - 1};
    std::array<X509*, 1> trusted{s.ca.cert.get()};
    const std::span<X509* const> none;
    const bool trust = (data[0] & 0x80) != 0;
    switch (data[0] % 3) {
        case 0: {
            scep::decode_options o;
            o.allow_legacy = (data[0] & 0x40) != 0;
            (void)scep::decode_cert_rep(der, s.client_cert.get(), s.client_key.get(),
                                        trust ? std::span<X509* const>{trusted} : none, o);
            break;
        }
        case 1:
            (void)scep::parse_get_next_ca_cert(der, trust ? std::span<X509* const>{trusted} : none);
            break;
        default:
            (void)scep::parse_certs_only(der);
            break;
    }
    return 0;
}
