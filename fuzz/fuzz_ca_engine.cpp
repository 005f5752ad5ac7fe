// The CA engine end to end: the fuzz input is wrapped into a validly signed and encrypted
// pkiMessage (client key, encrypted to the engine's CA), so the envelope checks pass and the
// policy code (challenge, grant mode, replay, renewal, polling, GetCert/GetCRL) is what gets
// fuzzed. Any HTTP status >= 500 aborts. The engine runs in a private folder under /dev/shm
// (or TMPDIR) with `grant auto`, the static challenge "secret" and `database level complete`.
//
// Input: byte 0 = message type (low 3 bits) and raw mode (0x80: the rest is the messageData
// as is; otherwise a CSR/IssuerAndSubject/IssuerAndSerial is built from the fields), byte 1 =
// cipher/digest/signingTime choices, then length-prefixed transactionID, subject DN,
// challenge, and a serial.
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <filesystem>

#include "fuzz_support.hpp"
#include "pkisim/scep/service.hpp"
#include "pkisim/timers/clock.hpp"

using namespace pkisim;

namespace {

// The engine's store grows with every issued certificate, and its cost per input with it
// (session 6: 111 inputs per CPU second after 200,000 inputs, ~500 in a 2,000-input run).
// Every `kFreshEvery` inputs the harness starts again from an empty data folder and the fuzz
// epoch: each input still meets a store with up to that many earlier requests in it (replay,
// polling, renewal and GetCert find what earlier inputs left), at a bounded cost.
constexpr unsigned kFreshEvery = 2000;

struct instance {
    timers::manual_clock clock{fuzz::fuzz_epoch()};
    std::filesystem::path dir;
    std::unique_ptr<scep::scep_service> engine;

    explicit instance(const std::string& ca_key_pem) {
        const char* base = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : std::getenv("TMPDIR");
        std::string tmpl = std::string{base ? base : "/tmp"} + "/pkisim-fuzz-engine-XXXXXX";
        if (!::mkdtemp(tmpl.data()))
            std::abort();
        dir = tmpl;
        scep::engine_options o;
        o.server.name = "fuzzca";
        o.server.issuer_name = "CN=fuzz-ca,O=pkisim fuzz";
        o.server.grant = timers::grant_mode::auto_grant;
        o.server.db_level = timers::database_level::complete;
        o.data_dir = dir / "data";
        o.passphrase = "fuzz-passphrase";
        o.challenge = "secret";
        o.legacy_crypto = true;
        // The harness's client key is RSA-1024 (fuzz_support.hpp: the cost is in RSA private
        // operations); the size check itself still runs on every CSR.
        o.min_rsa_bits = 1024;
        o.existing_key_pem = ca_key_pem;
        engine = scep::make_service(std::move(o), clock);
    }
    instance(const instance&) = delete;
    instance& operator=(const instance&) = delete;
    ~instance() {
        engine.reset();  // closes the store before its folder goes
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
};

struct state {
    std::string ca_key_pem = fuzz::read_text(fuzz::fuzz_key_path("ca"));
    std::unique_ptr<instance> current;
    unsigned inputs = 0;
    scep::evp_pkey_ptr client_key = fuzz::fixture_key("client");
    scep::x509_ptr client_cert;

    state() {
        scep::load_providers(true);
        current = std::make_unique<instance>(ca_key_pem);
        client_cert = scep::make_self_signed_signer(
            client_key.get(), "CN=SCEP SIGNER,O=scep-client",
            {fuzz::fuzz_epoch() - timers::days{1}, fuzz::fuzz_epoch() + timers::days{365}});
    }
    instance& next() {
        if (++inputs % kFreshEvery == 0)
            current = std::make_unique<instance>(ca_key_pem);
        return *current;
    }
};

state& the_state() {
    static state s;
    return s;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    // One-time setup, out of the per-input path: the engine, its CA and the client are made
    // here once. The CA key's PBKDF2 is not what this target fuzzes, so it uses the test
    // suite's work factor (key_protection.hpp): 600,000 iterations cost ~0.5-1 s of CPU per
    // process start, 5 % of a 20 s CI run. Set PKISIM_TEST_KDF_ITERATIONS to override.
    ::setenv("PKISIM_TEST_KDF_ITERATIONS", "4096", 0);
    (void)the_state();
    std::atexit([] { the_state().current.reset(); });
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto& st = the_state();
    auto& s = st.next();
    fuzz::reader in{data, size};
    const std::uint8_t kind = in.byte();
    const std::uint8_t flags = in.byte();
    constexpr std::array<scep::message_type, 5> types{
        scep::message_type::pkcs_req, scep::message_type::renewal_req,
        scep::message_type::cert_poll, scep::message_type::get_cert, scep::message_type::get_crl};
    constexpr std::array<int, 4> ciphers{NID_aes_256_cbc, NID_aes_128_cbc, NID_des_ede3_cbc,
                                         NID_des_cbc};
    constexpr std::array<int, 4> digests{NID_sha256, NID_sha1, NID_sha512, NID_md5};
    scep::request_params p;
    p.type = types[(kind & 0x7) % types.size()];
    p.cipher_nid = ciphers[flags & 0x3];
    p.digest_nid = digests[(flags >> 2) & 0x3];
    if (flags & 0x10)
        p.signing_time = s.clock.now();
    p.signer_cert = st.client_cert.get();
    p.signer_key = st.client_key.get();
    p.recipients = {s.engine->ca_certificate()};
    p.transaction_id = in.text(80);
    if (p.transaction_id.empty())
        p.transaction_id = scep::transaction_id_for(st.client_key.get());
    std::string dn = in.text(160);
    std::string challenge = in.text(80);
    const std::string serial_text = in.text(20);
    if (kind & 0x80) {
        p.message_data = in.rest();
    } else {
        if (dn.empty())
            dn = "CN=fuzz,O=lab";
        try {
            switch (p.type) {
                case scep::message_type::pkcs_req:
                case scep::message_type::renewal_req: {
                    scep::csr_options co;
                    if (!(flags & 0x20))
                        co.challenge_password = challenge.empty() ? "secret" : challenge;
                    co.challenge_utf8 = (flags & 0x40) != 0;
                    auto csr = scep::make_csr(st.client_key.get(), dn, co);
                    p.message_data = scep::to_der(csr.get());
                    break;
                }
                case scep::message_type::cert_poll: {
                    auto name = scep::parse_dn(dn);
                    if (!name)
                        return 0;
                    p.message_data = scep::encode_issuer_and_subject(
                        X509_get_subject_name(s.engine->ca_certificate()), name->get());
                    break;
                }
                default: {
                    std::uint64_t serial = 0;
                    for (const char c : serial_text)
                        serial = serial * 251 + static_cast<unsigned char>(c);
                    scep::asn1_integer_ptr n{ASN1_INTEGER_new()};
                    ASN1_INTEGER_set_uint64(n.get(), serial);
                    p.message_data = scep::encode_issuer_and_serial(
                        X509_get_subject_name(s.engine->ca_certificate()), n.get());
                    break;
                }
            }
        } catch (const std::invalid_argument&) {
            return 0;  // make_csr: not a DN
        }
    }
    auto der = scep::encode_pki_request(p);
    if (!der)
        return 0;
    const auto answer = s.engine->pki_operation(*der);
    if (answer.status >= 500) {
        std::fprintf(stderr, "HTTP %u: %s\n", answer.status, answer.detail.c_str());
        std::abort();
    }
    // Time moves a little per input (pending expiry, CRL renewal, validity) and the tick runs.
    s.clock.advance(timers::duration{std::chrono::minutes{(flags >> 7) ? 61 : 0}});
    (void)s.engine->tick();
    return 0;
}
