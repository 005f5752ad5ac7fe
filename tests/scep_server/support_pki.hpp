// Test PKI shared by the codec and server tests: fixture keys (tests/data/scep/*.key, no key
// generation at test time), a CA / shadow CA / RA built on them, and SCEP clients that build real
// pkiMessages with the codec's client side.
//
//   using namespace pkisim::scep::testing;
//   authority ca = make_ca();                                   // "CN=ca-server,O=lab", key ca.key
//   client c = make_client("client1", "CN=router1,O=lab", "secret");
//   bytes req = c.pkcs_req({ca.cert.get()});                     // AES-256 + SHA-256, like
//   certmonger auto decoded = decode_pki_message(req, std::array{ca.decryption()});
//
// Every nonce and transactionID is deterministic; the only randomness is OpenSSL's padding and
// content-encryption keys.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pkisim/scep/codec.hpp"
#include "pkisim/scep/crypto.hpp"

namespace pkisim::scep::testing {

// 2030-01-01T00:00:00Z: the instant every test PKI starts at.
time_point test_epoch();
// tests/data/scep/<name>
std::string data_path(std::string_view name);
std::string read_file(const std::string& path);
// Fixture RSA-2048 keys: "ca", "shadow", "ra", "client1", "client2". Loaded once per process
// (the pointer stays valid until exit).
EVP_PKEY* fixture_key(std::string_view name);
// 16 bytes: seed, seed+1, ... (deterministic nonces).
bytes test_nonce(std::uint8_t seed);

// A CA or RA: certificate + key (the key is a fixture, not owned).
struct authority {
    x509_ptr cert;
    EVP_PKEY* key = nullptr;
    decryption_key decryption() const { return {cert.get(), key}; }
};
// Self-signed CA (serial 1) valid [start, start + lifetime).
authority make_ca(std::string_view key_name = "ca", std::string_view dn = "CN=ca-server,O=lab",
                  time_point start = test_epoch(), timers::duration lifetime = timers::days{1095},
                  timers::hash_algorithm hash = timers::hash_algorithm::sha256);
// Shadow CA of `current` (new key, notBefore = current notAfter), serial 2.
authority make_shadow(const authority& current, std::string_view key_name = "shadow",
                      timers::duration lifetime = timers::days{1095});
// RA certificate issued by `ca` (cert_profile::registration_authority), serial `serial`.
authority make_ra(const authority& ca, std::string_view key_name = "ra",
                  std::string_view dn = "CN=ra,OU=ioscs RA,O=lab", std::uint64_t serial = 100);

struct request_options {
    int cipher_nid = NID_aes_256_cbc;  // certmonger's choice
    int digest_nid = NID_sha256;
    bool oaep = false;
    std::optional<time_point> signing_time = test_epoch();
    bytes sender_nonce = test_nonce(1);
    std::string transaction_id;  // empty -> the client's
};

// A SCEP client: key, self-signed signer certificate, CSR.
struct client {
    EVP_PKEY* key = nullptr;
    x509_ptr self_signed;  // "CN=SCEP SIGNER,O=scep-client", like micromdm
    x509_req_ptr csr;
    std::string transaction_id;  // SHA-1 of the public key (hex)

    // PKCSReq signed with the self-signed certificate (or `signer`+`signer_key` for a renewal
    // sent as PKCSReq, scep-wire §0.12).
    bytes pkcs_req(std::vector<X509*> recipients, const request_options& o = {},
                   X509* signer = nullptr, EVP_PKEY* signer_key = nullptr) const;
    // RenewalReq signed with an existing certificate and its key.
    bytes renewal_req(std::vector<X509*> recipients, X509* old_cert, EVP_PKEY* old_key,
                      const request_options& o = {}) const;
    // CertPoll with IssuerAndSubject(ca subject, csr subject).
    bytes cert_poll(std::vector<X509*> recipients, const X509* ca,
                    const request_options& o = {}) const;
    // GetCert / GetCRL for `cert` (IssuerAndSerialNumber), signed with signer (default
    // self_signed).
    bytes get_cert(std::vector<X509*> recipients, const X509* cert, const request_options& o = {},
                   X509* signer = nullptr, EVP_PKEY* signer_key = nullptr) const;
    bytes get_crl(std::vector<X509*> recipients, const X509* cert, const request_options& o = {},
                  X509* signer = nullptr, EVP_PKEY* signer_key = nullptr) const;
};
client make_client(std::string_view key_name = "client1", std::string_view dn = "CN=router1,O=lab",
                   std::optional<std::string> challenge = std::string{"secret"},
                   const csr_options& extra = {});

// HTTP request targets for a GET PKIOperation carrying `der`, the way real clients write them
// (scep-wire §0.7), for the HTTP-layer tests:
// standard base64, `+ / =` escaped as %2B %2F %3D (certmonger; RFC 8894 §4.1)
std::string certmonger_get_target(const bytes& der,
                                  std::string_view path = "/cgi-bin/pkiclient.exe");
// URL-safe base64 (`-` `_`, `=` kept), `message` BEFORE `operation` (micromdm scepclient 2.1.0)
std::string micromdm_get_target(const bytes& der, std::string_view path = "/cgi-bin/pkiclient.exe");
// standard base64 with a %0A line break every 64 characters, `+ / =` escaped (Cisco IOS)
std::string ios_get_target(const bytes& der, std::string_view path = "/cgi-bin/pkiclient.exe");
std::string base64(const bytes& der);  // standard alphabet, padded, no line breaks

// The decoded messageData by reference; throws std::bad_variant_access on the wrong type (so
// tests need no pointer that -Wnull-dereference flags in optimised builds).
inline const csr_request& csr_of(const pki_request& r) {
    return std::get<csr_request>(r.data);
}
inline const issuer_and_subject& poll_of(const pki_request& r) {
    return std::get<issuer_and_subject>(r.data);
}
inline const issuer_and_serial& cert_id_of(const pki_request& r) {
    return std::get<issuer_and_serial>(r.data);
}

// Issues `c`'s CSR from `ca` (end entity, serial, one year from test_epoch()).
x509_ptr issue_for(const client& c, const authority& ca, std::uint64_t serial,
                   timers::duration lifetime = timers::days{365});

}  // namespace pkisim::scep::testing
