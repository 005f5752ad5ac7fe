// Shared by the libFuzzer targets (fuzz/README.md): the harness keys in fuzz/keys, a fixed
// CA certificate for them, and a helper that turns fuzz bytes into values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

#include "pkisim/scep/codec.hpp"
#include "pkisim/scep/crypto.hpp"
#include "pkisim/scep/openssl.hpp"
#include "pkisim/timers/time.hpp"

namespace pkisim::fuzz {

inline std::string read_text(const std::string& path) {
    std::ifstream in{path, std::ios::binary};
    if (!in)
        throw std::runtime_error("fuzz: cannot read " + path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

inline std::string source_path(std::string_view rel) {
    return std::string{PKISIM_SOURCE_DIR} + "/" + std::string{rel};
}

// The harnesses' RSA keys (fuzz/keys/NAME.key: "ca", "client"), loaded once per process by the
// caller. RSA-1024, not the 2048 of tests/data/scep: the RSA private operations (the CA's
// decryption and signatures, the client's signatures and CertRep decryption) were most of the
// per-input time of pki_message, cert_rep and ca_engine, and the key size does not change which
// code the input reaches (the DER around the RSA blocks is what is fuzzed; the engine's
// --min-rsa-bits policy applies to CSR keys and fuzz_ca_engine sets it to the harness's size).
// Rerun fuzz_seedgen if these keys change.
inline std::string fuzz_key_path(std::string_view name) {
    return source_path("fuzz/keys/" + std::string{name} + ".key");
}
inline scep::evp_pkey_ptr fixture_key(std::string_view name) {
    auto k = scep::private_key_from_pem(read_text(fuzz_key_path(name)));
    if (!k)
        throw std::runtime_error("fuzz: bad fixture key " + std::string{name});
    return std::move(*k);
}

inline scep::time_point fuzz_epoch() {
    return timers::parse_iso8601("2030-01-01T00:00:00Z").value();
}

// The CA every pkiMessage target decrypts with: key fuzz/keys/ca.key, CN=fuzz-ca, 10 years from the
// epoch. Deterministic (RSA PKCS#1 v1.5 signatures are), so seeds written by fuzz_seedgen match.
struct fuzz_ca {
    scep::evp_pkey_ptr key = fixture_key("ca");
    scep::x509_ptr cert =
        scep::make_self_signed_ca(key.get(), "CN=fuzz-ca,O=pkisim fuzz",
                                  {fuzz_epoch(), fuzz_epoch() + timers::days{3650}}, 1,
                                  timers::hash_algorithm::sha256)
            .value();
};

// Reads fuzz bytes front to back.
class reader {
  public:
    reader(const std::uint8_t* data, std::size_t size) : p_(data), n_(size) {}
    std::uint8_t byte() {
        if (n_ == 0)
            return 0;
        --n_;
        return *p_++;
    }
    // A length-prefixed string of at most `max` bytes.
    std::string text(std::size_t max) {
        std::size_t len = byte();
        len = std::min({len, max, n_});
        std::string s(reinterpret_cast<const char*>(p_), len);
        p_ += len;
        n_ -= len;
        return s;
    }
    scep::bytes rest() {
        scep::bytes b(p_, p_ + n_);
        p_ += n_;
        n_ = 0;
        return b;
    }
    std::size_t left() const { return n_; }

  private:
    const std::uint8_t* p_;
    std::size_t n_;
};

}  // namespace pkisim::fuzz
