// SCEP codec hot path: what one PKIOperation costs the CA (keys loaded once and passed in, as
// the CA engine does). RSA-2048 fixture keys from tests/data/scep; AES-256 + SHA-256 (certmonger).
#include <array>

#include <openssl/decoder.h>
#include <openssl/evp.h>

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

// What the platform's OpenSSL charges per public key (issue 12 §3). OpenSSL 3.0 (Debian 12)
// decodes every SubjectPublicKeyInfo it parses -- inside d2i_X509 and d2i_X509_REQ, with no
// public way to hand it a decoder made once -- through a new OSSL_DECODER_CTX, whose set-up
// walks every decoder of every provider (openssl/openssl#15199, #17950; a cache of decoder
// contexts came in 3.2, #21426). A PKCSReq carries two keys (the signer certificate's and the
// CSR's), so an enrollment pays this twice. Compare with bm_rsa2048_sign, the unit of the floor.
void bm_openssl_decoder_ctx_for_public_key(benchmark::State& state) {
    for (auto _ : state) {
        EVP_PKEY* pkey = nullptr;
        OSSL_DECODER_CTX* ctx = OSSL_DECODER_CTX_new_for_pkey(
            &pkey, "DER", "SubjectPublicKeyInfo", "RSA", EVP_PKEY_PUBLIC_KEY, nullptr, nullptr);
        benchmark::DoNotOptimize(ctx);
        OSSL_DECODER_CTX_free(ctx);
    }
}
BENCHMARK(bm_openssl_decoder_ctx_for_public_key);

// The CSR of the PKCSReq parsed as the server parses it (x509_req_from_der: d2i_X509_REQ, one
// key decode inside).
void bm_d2i_x509_req(benchmark::State& state) {
    const bytes der = to_der(w().c.csr.get());
    for (auto _ : state) {
        auto req = x509_req_from_der(der);
        benchmark::DoNotOptimize(req);
    }
}
BENCHMARK(bm_d2i_x509_req);

// One RSA-2048 PKCS#1 v1.5 signature of a SHA-256 digest with the CA key (an enrollment makes
// three private-key operations: the envelope's decryption, the certificate, the CertRep).
void bm_rsa2048_sign(benchmark::State& state) {
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(w().ca.key, nullptr);
    EVP_PKEY_sign_init(ctx);
    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256());
    const std::array<unsigned char, 32> digest{};
    std::array<unsigned char, 512> sig{};
    for (auto _ : state) {
        std::size_t n = sig.size();
        if (EVP_PKEY_sign(ctx, sig.data(), &n, digest.data(), digest.size()) != 1)
            state.SkipWithError("EVP_PKEY_sign failed");
        benchmark::DoNotOptimize(sig);
    }
    EVP_PKEY_CTX_free(ctx);
}
BENCHMARK(bm_rsa2048_sign);
}  // namespace
