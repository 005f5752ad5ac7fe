#include "pkisim/scep/openssl.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <climits>
#include <ctime>
#include <mutex>
#include <stdexcept>

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/provider.h>

namespace pkisim::scep {

// ---------------------------------------------------------------------------------------------
// Errors.
namespace {

class scep_error_category final : public std::error_category {
  public:
    const char* name() const noexcept override { return "scep"; }
    std::string message(int value) const override {
        switch (static_cast<error>(value)) {
            case error::ok:
                return "success";
            case error::malformed_der:
                return "malformed DER/BER";
            case error::not_signed_data:
                return "not a CMS SignedData";
            case error::not_enveloped_data:
                return "pkcsPKIEnvelope is not an EnvelopedData";
            case error::no_signer:
                return "SignedData must have exactly one SignerInfo";
            case error::no_signer_certificate:
                return "signer certificate missing from SignedData certificates";
            case error::missing_attribute:
                return "required SCEP attribute missing";
            case error::bad_attribute:
                return "malformed SCEP attribute";
            case error::unknown_message_type:
                return "unknown or unexpected messageType";
            case error::bad_message_data:
                return "malformed messageData";
            case error::message_too_large:
                return "message too large";
            case error::bad_signature:
                return "signature verification failed";
            case error::unsupported_algorithm:
                return "unsupported algorithm";
            case error::legacy_algorithm_disabled:
                return "single DES / MD5 refused (RFC 8894 §2.9); start with --legacy-crypto";
            case error::not_for_us:
                return "envelope not encrypted to any of our certificates";
            case error::decrypt_failed:
                return "cannot decrypt pkcsPKIEnvelope";
            case error::bad_csr_signature:
                return "CSR signature (proof of possession) invalid";
            case error::signer_not_trusted:
                return "signer certificate not issued by this CA";
            case error::signer_expired:
                return "signer certificate expired or not yet valid";
            case error::wrong_passphrase:
                return "wrong passphrase for the private key";
            case error::bad_key:
                return "unusable key";
            case error::bad_dn:
                return "cannot parse distinguished name";
            case error::bad_challenge:
                return "challenge password wrong or missing";
            case error::request_rejected:
                return "request rejected";
            case error::unknown_transaction:
                return "no request with this transactionID";
            case error::unknown_certificate:
                return "no such certificate";
            case error::bad_time:
                return "signingTime out of range";
            case error::internal:
                return "internal OpenSSL error";
        }
        return fmt::format("scep error {}", value);
    }
};

}  // namespace

const std::error_category& scep_category() noexcept {
    static const scep_error_category category;
    return category;
}

std::error_code make_error_code(error e) noexcept {
    return {static_cast<int>(e), scep_category()};
}

// ---------------------------------------------------------------------------------------------
// Ownership helpers.
namespace detail {
void free_x509_stack(STACK_OF(X509) * s) noexcept {
    sk_X509_pop_free(s, X509_free);
}
void free_crl_stack(STACK_OF(X509_CRL) * s) noexcept {
    sk_X509_CRL_pop_free(s, X509_CRL_free);
}
void free_openssl_string(char* s) noexcept {
    OPENSSL_free(s);
}
}  // namespace detail

namespace {
[[noreturn]] void throw_openssl(std::string_view what) {
    throw std::runtime_error(fmt::format("{}: {}", what, drain_openssl_errors()));
}
}  // namespace

x509_ptr share(X509* cert) {
    if (cert != nullptr) {
        X509_up_ref(cert);
    }
    return x509_ptr{cert};
}
evp_pkey_ptr share(EVP_PKEY* key) {
    if (key != nullptr) {
        EVP_PKEY_up_ref(key);
    }
    return evp_pkey_ptr{key};
}
x509_crl_ptr share(X509_CRL* crl) {
    if (crl != nullptr) {
        X509_CRL_up_ref(crl);
    }
    return x509_crl_ptr{crl};
}
x509_name_ptr copy(const X509_NAME* name) {
    x509_name_ptr out{X509_NAME_dup(name)};
    if (!out) {
        throw_openssl("X509_NAME_dup");
    }
    return out;
}

x509_stack_ptr make_x509_stack(std::span<X509* const> certs) {
    x509_stack_ptr stack{sk_X509_new_null()};
    if (!stack) {
        throw_openssl("sk_X509_new_null");
    }
    for (X509* c : certs) {
        if (c == nullptr) {
            continue;
        }
        x509_ptr ref = share(c);
        if (sk_X509_push(stack.get(), ref.get()) <= 0) {
            throw_openssl("sk_X509_push");
        }
        static_cast<void>(ref.release());
    }
    return stack;
}

// ---------------------------------------------------------------------------------------------
// Providers.
namespace {
std::mutex provider_mutex;
OSSL_PROVIDER* default_provider = nullptr;
OSSL_PROVIDER* legacy_provider = nullptr;
}  // namespace

void load_providers(bool legacy) {
    const std::lock_guard lock{provider_mutex};
    // Loading "legacy" explicitly disables the implicit fallback to "default", so both are
    // loaded (scep-wire §0.1). The handles stay loaded for the life of the process.
    if (default_provider == nullptr) {
        default_provider = OSSL_PROVIDER_load(nullptr, "default");
        if (default_provider == nullptr) {
            throw_openssl("cannot load the OpenSSL default provider");
        }
    }
    if (legacy && legacy_provider == nullptr) {
        legacy_provider = OSSL_PROVIDER_load(nullptr, "legacy");
        if (legacy_provider == nullptr) {
            throw_openssl("cannot load the OpenSSL legacy provider (needed by --legacy-crypto)");
        }
    }
}

bool legacy_provider_loaded() noexcept {
    const std::lock_guard lock{provider_mutex};
    return legacy_provider != nullptr;
}

std::string drain_openssl_errors() {
    std::string out;
    std::array<char, 256> buf{};
    while (const unsigned long code = ERR_get_error()) {
        ERR_error_string_n(code, buf.data(), buf.size());
        if (!out.empty()) {
            out += "; ";
        }
        out += buf.data();
    }
    return out.empty() ? std::string{"(no OpenSSL error)"} : out;
}

// ---------------------------------------------------------------------------------------------
// DER / PEM.
namespace {

template <typename T, int (*I2d)(const T*, unsigned char**)>
bytes i2d_bytes(const T* obj, std::string_view what) {
    const int len = I2d(obj, nullptr);
    if (len <= 0) {
        throw_openssl(what);
    }
    bytes out(static_cast<std::size_t>(len));
    unsigned char* p = out.data();
    if (I2d(obj, &p) != len) {
        throw_openssl(what);
    }
    return out;
}

std::string bio_to_string(BIO* bio) {
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio, &data);
    return len > 0 ? std::string(data, static_cast<std::size_t>(len)) : std::string{};
}

bio_ptr mem_bio() {
    bio_ptr bio{BIO_new(BIO_s_mem())};
    if (!bio) {
        throw_openssl("BIO_new");
    }
    return bio;
}

bio_ptr read_bio(std::string_view text) {
    if (text.size() > static_cast<std::size_t>(INT_MAX)) {
        return nullptr;
    }
    return bio_ptr{BIO_new_mem_buf(text.data(), static_cast<int>(text.size()))};
}

// d2i with the "whole buffer consumed" rule.
template <typename T, typename Ptr, T* (*D2i)(T**, const unsigned char**, long)>
tl::expected<Ptr, std::error_code> d2i_exact(byte_view der) {
    if (der.empty() || der.size() > static_cast<std::size_t>(LONG_MAX)) {
        return tl::unexpected(make_error_code(error::malformed_der));
    }
    const unsigned char* p = der.data();
    Ptr obj{D2i(nullptr, &p, static_cast<long>(der.size()))};
    if (!obj || p != der.data() + der.size()) {
        ERR_clear_error();
        return tl::unexpected(make_error_code(error::malformed_der));
    }
    return obj;
}

}  // namespace

bytes to_der(const X509* cert) {
    return i2d_bytes<X509, i2d_X509>(cert, "i2d_X509");
}
bytes to_der(const X509_REQ* csr) {
    return i2d_bytes<X509_REQ, i2d_X509_REQ>(csr, "i2d_X509_REQ");
}
bytes to_der(const X509_CRL* crl) {
    return i2d_bytes<X509_CRL, i2d_X509_CRL>(crl, "i2d_X509_CRL");
}
bytes to_der(const PKCS7* p7) {
    return i2d_bytes<PKCS7, i2d_PKCS7>(p7, "i2d_PKCS7");
}
bytes to_der(const X509_NAME* name) {
    return i2d_bytes<X509_NAME, i2d_X509_NAME>(name, "i2d_X509_NAME");
}

std::string to_pem(const X509* cert) {
    bio_ptr bio = mem_bio();
    if (PEM_write_bio_X509(bio.get(), cert) != 1) {
        throw_openssl("PEM_write_bio_X509");
    }
    return bio_to_string(bio.get());
}
std::string to_pem(const X509_REQ* csr) {
    bio_ptr bio = mem_bio();
    if (PEM_write_bio_X509_REQ(bio.get(), csr) != 1) {
        throw_openssl("PEM_write_bio_X509_REQ");
    }
    return bio_to_string(bio.get());
}
std::string to_pem(const X509_CRL* crl) {
    bio_ptr bio = mem_bio();
    if (PEM_write_bio_X509_CRL(bio.get(), crl) != 1) {
        throw_openssl("PEM_write_bio_X509_CRL");
    }
    return bio_to_string(bio.get());
}
std::string private_key_to_pem(const EVP_PKEY* key) {
    bio_ptr bio = mem_bio();
    if (PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
        throw_openssl("PEM_write_bio_PrivateKey");
    }
    return bio_to_string(bio.get());
}
std::string public_key_to_pem(const EVP_PKEY* key) {
    bio_ptr bio = mem_bio();
    if (PEM_write_bio_PUBKEY(bio.get(), key) != 1) {
        throw_openssl("PEM_write_bio_PUBKEY");
    }
    return bio_to_string(bio.get());
}

tl::expected<x509_ptr, std::error_code> x509_from_der(byte_view der) {
    return d2i_exact<X509, x509_ptr, d2i_X509>(der);
}
tl::expected<x509_req_ptr, std::error_code> x509_req_from_der(byte_view der) {
    return d2i_exact<X509_REQ, x509_req_ptr, d2i_X509_REQ>(der);
}
tl::expected<x509_crl_ptr, std::error_code> x509_crl_from_der(byte_view der) {
    return d2i_exact<X509_CRL, x509_crl_ptr, d2i_X509_CRL>(der);
}
tl::expected<pkcs7_ptr, std::error_code> pkcs7_from_der(byte_view der) {
    return d2i_exact<PKCS7, pkcs7_ptr, d2i_PKCS7>(der);
}

tl::expected<x509_ptr, std::error_code> x509_from_pem(std::string_view pem) {
    bio_ptr bio = read_bio(pem);
    x509_ptr cert{bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr};
    if (!cert) {
        ERR_clear_error();
        return tl::unexpected(make_error_code(error::malformed_der));
    }
    return cert;
}

tl::expected<std::vector<x509_ptr>, std::error_code> x509_chain_from_pem(std::string_view pem) {
    bio_ptr bio = read_bio(pem);
    std::vector<x509_ptr> out;
    while (bio) {
        x509_ptr cert{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)};
        if (!cert) {
            break;
        }
        out.push_back(std::move(cert));
    }
    ERR_clear_error();  // the end of the text is reported as an error
    if (out.empty()) {
        return tl::unexpected(make_error_code(error::malformed_der));
    }
    return out;
}

tl::expected<x509_req_ptr, std::error_code> x509_req_from_pem(std::string_view pem) {
    bio_ptr bio = read_bio(pem);
    x509_req_ptr req{bio ? PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr) : nullptr};
    if (!req) {
        ERR_clear_error();
        return tl::unexpected(make_error_code(error::malformed_der));
    }
    return req;
}

tl::expected<x509_crl_ptr, std::error_code> x509_crl_from_pem(std::string_view pem) {
    bio_ptr bio = read_bio(pem);
    x509_crl_ptr crl{bio ? PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr) : nullptr};
    if (!crl) {
        ERR_clear_error();
        return tl::unexpected(make_error_code(error::malformed_der));
    }
    return crl;
}

tl::expected<evp_pkey_ptr, std::error_code> private_key_from_pem(std::string_view pem) {
    bio_ptr bio = read_bio(pem);
    // An empty passphrase callback result: an encrypted key fails instead of prompting on a tty.
    static constexpr auto no_passphrase = [](char*, int, int, void*) -> int { return 0; };
    evp_pkey_ptr key{bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr)
                         : nullptr};
    if (!key) {
        ERR_clear_error();
        return tl::unexpected(make_error_code(error::bad_key));
    }
    return key;
}

// ---------------------------------------------------------------------------------------------
// Time.
asn1_time_ptr to_asn1_time(time_point t) {
    const auto secs = std::chrono::floor<std::chrono::seconds>(t).time_since_epoch().count();
    asn1_time_ptr out{ASN1_TIME_set(nullptr, static_cast<time_t>(secs))};
    if (!out) {
        throw_openssl("ASN1_TIME_set");
    }
    return out;
}

tl::expected<time_point, std::error_code> from_asn1_time(const ASN1_TIME* t) {
    std::tm tm{};
    if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
        ERR_clear_error();
        return tl::unexpected(make_error_code(error::bad_attribute));
    }
    const date::year_month_day ymd{date::year{tm.tm_year + 1900},
                                   date::month{static_cast<unsigned>(tm.tm_mon + 1)},
                                   date::day{static_cast<unsigned>(tm.tm_mday)}};
    if (!ymd.ok()) {
        return tl::unexpected(make_error_code(error::bad_attribute));
    }
    const auto day_point = date::sys_days{ymd};
    return time_point{std::chrono::duration_cast<timers::duration>(
        day_point.time_since_epoch() + std::chrono::hours{tm.tm_hour} +
        std::chrono::minutes{tm.tm_min} + std::chrono::seconds{tm.tm_sec})};
}

time_point not_before(const X509* cert) {
    auto t = from_asn1_time(X509_get0_notBefore(cert));
    if (!t) {
        throw std::runtime_error("certificate has an unreadable notBefore");
    }
    return *t;
}
time_point not_after(const X509* cert) {
    auto t = from_asn1_time(X509_get0_notAfter(cert));
    if (!t) {
        throw std::runtime_error("certificate has an unreadable notAfter");
    }
    return *t;
}

// ---------------------------------------------------------------------------------------------
// Certificate facts.
namespace {
bytes cert_digest(const X509* cert, const EVP_MD* md) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> buf{};
    unsigned int len = 0;
    if (X509_digest(cert, md, buf.data(), &len) != 1) {
        throw_openssl("X509_digest");
    }
    return {buf.begin(), buf.begin() + len};
}
}  // namespace

std::string to_hex(byte_view data) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(data.size() * 2);
    for (const std::uint8_t b : data) {
        out += digits[b >> 4];
        out += digits[b & 0x0f];
    }
    return out;
}

std::string ios_fingerprint(const X509* cert, const EVP_MD* md) {
    const std::string hex = to_hex(cert_digest(cert, md));
    std::string out;
    for (std::size_t i = 0; i < hex.size(); ++i) {
        if (i != 0 && i % 8 == 0) {
            out += ' ';
        }
        out += static_cast<char>(std::toupper(static_cast<unsigned char>(hex[i])));
    }
    return out;
}

std::string hex_fingerprint(const X509* cert, const EVP_MD* md) {
    return to_hex(cert_digest(cert, md));
}

std::string name_entry_key(const X509_NAME_ENTRY* entry) {
    const int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(entry));
    if (nid != NID_undef) {
        return OBJ_nid2sn(nid);
    }
    std::array<char, 128> oid{};
    OBJ_obj2txt(oid.data(), static_cast<int>(oid.size()), X509_NAME_ENTRY_get_object(entry), 1);
    return oid.data();
}

std::string name_entry_value(const X509_NAME_ENTRY* entry) {
    unsigned char* utf8 = nullptr;
    const int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
    std::string value;
    if (len >= 0) {
        value.assign(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(len));
        OPENSSL_free(utf8);
    } else {
        ERR_clear_error();
    }
    return value;
}

std::string name_to_string(const X509_NAME* name) {
    std::string out;
    if (name == nullptr) {
        return out;
    }
    const int count = X509_NAME_entry_count(name);
    for (int i = 0; i < count; ++i) {
        const X509_NAME_ENTRY* entry = X509_NAME_get_entry(name, i);
        const std::string key = name_entry_key(entry);
        const std::string value = name_entry_value(entry);
        if (!out.empty()) {
            out += ',';
        }
        out += key;
        out += '=';
        for (const char c : value) {
            if (c == ',' || c == '\\') {
                out += '\\';
            }
            out += c;
        }
    }
    return out;
}

std::string subject_string(const X509* cert) {
    return name_to_string(X509_get_subject_name(cert));
}
std::string issuer_string(const X509* cert) {
    return name_to_string(X509_get_issuer_name(cert));
}

std::string serial_hex(const ASN1_INTEGER* serial) {
    bignum_ptr bn{ASN1_INTEGER_to_BN(serial, nullptr)};
    if (!bn) {
        ERR_clear_error();
        return {};
    }
    openssl_string_ptr hex{BN_bn2hex(bn.get())};
    if (!hex) {
        throw_openssl("BN_bn2hex");
    }
    std::string out{hex.get()};
    // BN_bn2hex pads to whole bytes ("01"); IOS prints "1".
    const bool negative = !out.empty() && out.front() == '-';
    const std::size_t start = negative ? 1 : 0;
    const std::size_t first = out.find_first_not_of('0', start);
    if (first == std::string::npos) {
        return "0";
    }
    out.erase(start, first - start);
    return out;
}
std::string serial_hex(const X509* cert) {
    return serial_hex(X509_get0_serialNumber(cert));
}

std::optional<std::uint64_t> serial_u64(const ASN1_INTEGER* serial) {
    std::uint64_t v = 0;
    if (serial == nullptr || ASN1_INTEGER_get_uint64(&v, serial) != 1) {
        ERR_clear_error();
        return std::nullopt;
    }
    return v;
}
std::optional<std::uint64_t> serial_u64(const X509* cert) {
    return serial_u64(X509_get0_serialNumber(cert));
}

bool is_self_signed(X509* cert) {
    // X509_self_signed(cert, 1) checks the names/AKI and the signature.
    const int r = X509_self_signed(cert, 1);
    ERR_clear_error();
    return r == 1;
}

bool same_public_key(const EVP_PKEY* a, const EVP_PKEY* b) {
    if (a == nullptr || b == nullptr) {
        return false;
    }
    const int r = EVP_PKEY_eq(a, b);
    ERR_clear_error();
    return r == 1;
}

const EVP_MD* digest_by_nid(int nid) noexcept {
    switch (nid) {
        case NID_md5:
            return EVP_md5();
        case NID_sha1:
            return EVP_sha1();
        case NID_sha224:
            return EVP_sha224();
        case NID_sha256:
            return EVP_sha256();
        case NID_sha384:
            return EVP_sha384();
        case NID_sha512:
            return EVP_sha512();
        default:
            return nullptr;
    }
}

const EVP_CIPHER* cipher_by_nid(int nid) noexcept {
    switch (nid) {
        case NID_des_cbc:
            return EVP_des_cbc();
        case NID_des_ede3_cbc:
            return EVP_des_ede3_cbc();
        case NID_aes_128_cbc:
            return EVP_aes_128_cbc();
        case NID_aes_192_cbc:
            return EVP_aes_192_cbc();
        case NID_aes_256_cbc:
            return EVP_aes_256_cbc();
        default:
            return nullptr;
    }
}

std::string algorithm_name(int nid) {
    const char* sn = OBJ_nid2sn(nid);
    return sn != nullptr ? std::string{sn} : fmt::format("nid {}", nid);
}

bool is_legacy_algorithm(int nid) noexcept {
    return nid == NID_des_cbc || nid == NID_md5;
}

}  // namespace pkisim::scep
