#include "support_pki.hpp"

#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>

namespace pkisim::scep::testing {

time_point test_epoch() {
    return time_point{date::sys_days{date::year{2030} / 1 / 1}};
}

std::string data_path(std::string_view name) {
    return std::string{PKISIM_SOURCE_DIR} + "/tests/data/scep/" + std::string{name};
}

std::string read_file(const std::string& path) {
    std::ifstream in{path, std::ios::binary};
    if (!in) {
        throw std::runtime_error("cannot read " + path);
    }
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

EVP_PKEY* fixture_key(std::string_view name) {
    static std::mutex mutex;
    static std::map<std::string, evp_pkey_ptr, std::less<>> keys;
    const std::lock_guard lock{mutex};
    if (auto it = keys.find(name); it != keys.end()) {
        return it->second.get();
    }
    auto key = private_key_from_pem(read_file(data_path(std::string{name} + ".key")));
    if (!key) {
        throw std::runtime_error("bad fixture key " + std::string{name});
    }
    EVP_PKEY* raw = key->get();
    keys.emplace(std::string{name}, std::move(*key));
    return raw;
}

bytes test_nonce(std::uint8_t seed) {
    bytes n(16);
    for (std::size_t i = 0; i < n.size(); ++i) {
        n[i] = static_cast<std::uint8_t>(seed + i);
    }
    return n;
}

authority make_ca(std::string_view key_name, std::string_view dn, time_point start,
                  timers::duration lifetime, timers::hash_algorithm hash) {
    authority a;
    a.key = fixture_key(key_name);
    auto cert = make_self_signed_ca(a.key, dn, {start, start + lifetime}, 1, hash);
    if (!cert) {
        throw std::runtime_error("make_self_signed_ca: " + cert.error().message());
    }
    a.cert = std::move(*cert);
    return a;
}

authority make_shadow(const authority& current, std::string_view key_name,
                      timers::duration lifetime) {
    authority a;
    a.key = fixture_key(key_name);
    // Model §1 rule 3, through the shared rule.
    auto cert = make_shadow_ca(a.key, current.cert.get(),
                               timers::shadow_ca_validity(not_after(current.cert.get()), lifetime),
                               2, timers::hash_algorithm::sha256);
    if (!cert) {
        throw std::runtime_error("make_shadow_ca: " + cert.error().message());
    }
    a.cert = std::move(*cert);
    return a;
}

authority make_ra(const authority& ca, std::string_view key_name, std::string_view dn,
                  std::uint64_t serial) {
    authority a;
    a.key = fixture_key(key_name);
    x509_req_ptr csr = make_csr(a.key, dn);
    issue_options o;
    o.validity = {test_epoch(), not_after(ca.cert.get())};
    o.serial = serial;
    o.profile = cert_profile::registration_authority;
    auto cert = issue_certificate(csr.get(), ca.cert.get(), ca.key, o);
    if (!cert) {
        throw std::runtime_error("issue RA: " + cert.error().message());
    }
    a.cert = std::move(*cert);
    return a;
}

namespace {
bytes build(message_type type, bytes data, std::vector<X509*> recipients, const request_options& o,
            X509* signer, EVP_PKEY* key, const std::string& default_tid) {
    request_params p;
    p.type = type;
    p.message_data = std::move(data);
    p.signer_cert = signer;
    p.signer_key = key;
    p.recipients = std::move(recipients);
    p.cipher_nid = o.cipher_nid;
    p.digest_nid = o.digest_nid;
    p.oaep = o.oaep;
    p.signing_time = o.signing_time;
    p.sender_nonce = o.sender_nonce;
    p.transaction_id = o.transaction_id.empty() ? default_tid : o.transaction_id;
    auto der = encode_pki_request(p);
    if (!der) {
        throw std::runtime_error("encode_pki_request: " + der.error().message() + " " +
                                 drain_openssl_errors());
    }
    return std::move(*der);
}
}  // namespace

bytes client::pkcs_req(std::vector<X509*> recipients, const request_options& o, X509* signer,
                       EVP_PKEY* signer_key) const {
    return build(message_type::pkcs_req, to_der(csr.get()), std::move(recipients), o,
                 signer != nullptr ? signer : self_signed.get(),
                 signer_key != nullptr ? signer_key : key, transaction_id);
}

bytes client::renewal_req(std::vector<X509*> recipients, X509* old_cert, EVP_PKEY* old_key,
                          const request_options& o) const {
    return build(message_type::renewal_req, to_der(csr.get()), std::move(recipients), o, old_cert,
                 old_key, transaction_id);
}

bytes client::cert_poll(std::vector<X509*> recipients, const X509* ca,
                        const request_options& o) const {
    return build(
        message_type::cert_poll,
        encode_issuer_and_subject(X509_get_subject_name(ca), X509_REQ_get_subject_name(csr.get())),
        std::move(recipients), o, self_signed.get(), key, transaction_id);
}

bytes client::get_cert(std::vector<X509*> recipients, const X509* cert, const request_options& o,
                       X509* signer, EVP_PKEY* signer_key) const {
    return build(message_type::get_cert, encode_issuer_and_serial(cert), std::move(recipients), o,
                 signer != nullptr ? signer : self_signed.get(),
                 signer_key != nullptr ? signer_key : key, transaction_id);
}

bytes client::get_crl(std::vector<X509*> recipients, const X509* cert, const request_options& o,
                      X509* signer, EVP_PKEY* signer_key) const {
    return build(message_type::get_crl, encode_issuer_and_serial(cert), std::move(recipients), o,
                 signer != nullptr ? signer : self_signed.get(),
                 signer_key != nullptr ? signer_key : key, transaction_id);
}

client make_client(std::string_view key_name, std::string_view dn,
                   std::optional<std::string> challenge, const csr_options& extra) {
    client c;
    c.key = fixture_key(key_name);
    const time_point t = test_epoch();
    c.self_signed = make_self_signed_signer(c.key, "CN=SCEP SIGNER,O=scep-client",
                                            {t - timers::hours{1}, t + timers::hours{1}});
    csr_options o = extra;
    if (challenge) {
        o.challenge_password = std::move(challenge);
    }
    c.csr = make_csr(c.key, dn, o);
    c.transaction_id = transaction_id_for(c.key);
    return c;
}

std::string base64(const bytes& der) {
    static constexpr char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((der.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < der.size(); i += 3) {
        const std::uint32_t v =
            (std::uint32_t{der[i]} << 16) | (std::uint32_t{der[i + 1]} << 8) | der[i + 2];
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += alphabet[v & 63];
    }
    if (i + 1 == der.size()) {
        const std::uint32_t v = std::uint32_t{der[i]} << 16;
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += "==";
    } else if (i + 2 == der.size()) {
        const std::uint32_t v = (std::uint32_t{der[i]} << 16) | (std::uint32_t{der[i + 1]} << 8);
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += '=';
    }
    return out;
}

namespace {
std::string percent_escape(std::string_view b64) {
    std::string out;
    for (const char c : b64) {
        switch (c) {
            case '+':
                out += "%2B";
                break;
            case '/':
                out += "%2F";
                break;
            case '=':
                out += "%3D";
                break;
            default:
                out += c;
        }
    }
    return out;
}
}  // namespace

std::string certmonger_get_target(const bytes& der, std::string_view path) {
    return std::string{path} + "?operation=PKIOperation&message=" + percent_escape(base64(der));
}

std::string micromdm_get_target(const bytes& der, std::string_view path) {
    std::string b64 = base64(der);
    for (char& c : b64) {
        c = c == '+' ? '-' : c == '/' ? '_' : c;
    }
    return std::string{path} + "?message=" + b64 + "&operation=PKIOperation";
}

std::string ios_get_target(const bytes& der, std::string_view path) {
    const std::string b64 = base64(der);
    std::string lines;
    for (std::size_t i = 0; i < b64.size(); i += 64) {
        lines += b64.substr(i, 64);
        lines += '\n';
    }
    std::string escaped;
    for (const char c : percent_escape(lines)) {
        escaped += c == '\n' ? std::string{"%0A"} : std::string(1, c);
    }
    return std::string{path} + "?operation=PKIOperation&message=" + escaped;
}

x509_ptr issue_for(const client& c, const authority& ca, std::uint64_t serial,
                   timers::duration lifetime) {
    issue_options o;
    o.validity = {test_epoch(), test_epoch() + lifetime};
    o.serial = serial;
    auto cert = issue_certificate(c.csr.get(), ca.cert.get(), ca.key, o);
    if (!cert) {
        throw std::runtime_error("issue_certificate: " + cert.error().message());
    }
    return std::move(*cert);
}

}  // namespace pkisim::scep::testing
