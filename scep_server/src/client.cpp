// SCEP client over HTTP: see client.hpp.
#include "pkisim/scep/client.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "pkisim/scep/crypto.hpp"

namespace pkisim::scep {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

client_failure make_failure(client_error code, std::string text, unsigned status = 0) {
    client_failure f;
    f.code = code;
    f.text = std::move(text);
    f.http_status = status;
    return f;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

bool ends_with_icase(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && iequals(s.substr(s.size() - suffix.size()), suffix);
}

// RFC 3986 unreserved characters pass, everything else is %XX.
std::string percent_encode(std::string_view s) {
    std::string out;
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        if (std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += c;
        } else {
            out += fmt::format("%{:02X}", u);
        }
    }
    return out;
}

bool is_ca_cert(X509* cert) {
    return X509_check_ca(cert) != 0;
}

bool has_key_usage(X509* cert, std::uint32_t bits) {
    // UINT32_MAX when there is no keyUsage extension: every usage allowed (RFC 5280 §4.2.1.3).
    return (X509_get_key_usage(cert) & bits) != 0;
}

time_point wall_clock_now() {
    return std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now());
}

bytes fresh_nonce() {
    bytes nonce(16);
    if (RAND_bytes(nonce.data(), static_cast<int>(nonce.size())) != 1) {
        throw std::runtime_error("RAND_bytes failed: " + drain_openssl_errors());
    }
    return nonce;
}

// The start of an error body, when it is printable text (servers often explain themselves).
std::string snippet(std::string_view body) {
    body = body.substr(0, std::min<std::size_t>(body.size(), 120));
    std::string out;
    for (char c : body) {
        if (c == '\n' || c == '\r') {
            out += ' ';
        } else if (std::isprint(static_cast<unsigned char>(c)) == 0) {
            return {};
        } else {
            out += c;
        }
    }
    while (!out.empty() && out.back() == ' ')
        out.pop_back();
    return out;
}

std::string trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
        s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
        s.remove_suffix(1);
    return std::string{s};
}

// The issued certificate is the leaf (scep-wire §1.5); pick the one with our key to be safe.
x509_ptr pick_issued(std::vector<x509_ptr>& certs, const EVP_PKEY* key,
                     std::vector<x509_ptr>& chain) {
    x509_ptr leaf;
    for (auto& c : certs) {
        if (!leaf && key != nullptr && same_public_key(X509_get0_pubkey(c.get()), key)) {
            leaf = std::move(c);
        }
    }
    if (!leaf && !certs.empty())
        leaf = std::move(certs.front());
    for (auto& c : certs) {
        if (c)
            chain.push_back(std::move(c));
    }
    return leaf;
}

}  // namespace

std::string_view to_string(client_error e) noexcept {
    switch (e) {
        case client_error::bad_url:
            return "bad URL";
        case client_error::resolve_failed:
            return "host not found";
        case client_error::connect_refused:
            return "connection refused";
        case client_error::connect_timeout:
            return "connect timeout";
        case client_error::read_timeout:
            return "read timeout";
        case client_error::network:
            return "network error";
        case client_error::http_status:
            return "HTTP error";
        case client_error::scep_failure:
            return "SCEP FAILURE";
        case client_error::bad_response:
            return "bad response";
        case client_error::bad_request:
            return "cannot build request";
    }
    return "unknown error";
}

std::string client_failure::message() const {
    std::string m{to_string(code)};
    if (code == client_error::http_status) {
        m = fmt::format("HTTP {}", http_status);
        if (http_status != 0) {
            auto reason = http::obsolete_reason(static_cast<http::status>(http_status));
            if (!reason.empty() && reason != "<unknown-status>")
                m += fmt::format(" {}", reason);
        }
    } else if (code == client_error::scep_failure && failure) {
        m += fmt::format(" {}", to_string(*failure));
    }
    if (!text.empty())
        m += ": " + text;
    return m;
}

client_options ios_client_options(std::string url, std::string trustpoint) {
    client_options o;
    o.url = std::move(url);
    o.http_version = 10;
    o.user_agent = std::string{ios_user_agent};
    o.method = pki_operation_method::get;
    o.ios_line_breaks = true;
    o.ca_identifier = std::move(trustpoint);
    return o;
}

// ---------------------------------------------------------------------------------------------
// GetCACaps / GetCACert helpers.
bool ca_caps::has(std::string_view keyword) const {
    return std::any_of(keywords.begin(), keywords.end(),
                       [&](const std::string& k) { return iequals(k, keyword); });
}

int ca_caps::cipher_nid(bool legacy) const {
    if (has("AES") || has("SCEPStandard"))
        return NID_aes_128_cbc;  // RFC 8894 §3.5.2: AES-128
    if (has("DES3"))
        return NID_des_ede3_cbc;
    return legacy ? NID_des_cbc : NID_des_ede3_cbc;  // old IOS: DES when nothing is advertised
}

int ca_caps::digest_nid(bool legacy) const {
    if (has("SHA-256") || has("SCEPStandard"))
        return NID_sha256;
    if (has("SHA-512"))
        return NID_sha512;
    if (has("SHA-1"))
        return NID_sha1;
    return legacy ? NID_md5 : NID_sha1;  // old IOS: MD5 when nothing is advertised
}

std::vector<X509*> ca_certs::all() const {
    std::vector<X509*> v;
    for (const auto& c : certs)
        v.push_back(c.get());
    return v;
}

client_result<ca_certs> classify_ca_certs(std::vector<x509_ptr> certs, std::string content_type) {
    if (certs.empty()) {
        return tl::unexpected(make_failure(client_error::bad_response, "no certificate"));
    }
    ca_certs out;
    out.content_type = std::move(content_type);
    X509* ca = nullptr;
    for (auto& c : certs) {
        if (ca == nullptr && is_ca_cert(c.get()) && is_self_signed(c.get()))
            ca = c.get();
    }
    for (auto& c : certs) {
        if (ca == nullptr && is_ca_cert(c.get()))
            ca = c.get();
    }
    if (ca == nullptr)
        ca = certs.front().get();
    X509* enc = nullptr;
    X509* sig = nullptr;
    for (auto& c : certs) {
        if (c.get() == ca || is_ca_cert(c.get()))
            continue;
        if (enc == nullptr && has_key_usage(c.get(), KU_KEY_ENCIPHERMENT))
            enc = c.get();
        if (sig == nullptr && has_key_usage(c.get(), KU_DIGITAL_SIGNATURE))
            sig = c.get();
    }
    if (enc == nullptr && !has_key_usage(ca, KU_KEY_ENCIPHERMENT)) {
        // CertNanny#82 (scep-wire §1.6): when the CA cannot be encrypted to either, the non-CA
        // certificate is the RA (an RA certified by a CA that sets no keyEncipherment, such as
        // micromdm scepserver: digitalSignature only).
        for (auto& c : certs) {
            if (enc == nullptr && c.get() != ca && !is_ca_cert(c.get()))
                enc = c.get();
        }
    }
    out.ca = share(ca);
    out.encryption = share(enc != nullptr ? enc : ca);
    out.signer = share(sig != nullptr ? sig : ca);
    out.certs = std::move(certs);
    return out;
}

std::string encode_get_message(byte_view der, bool line_breaks) {
    std::string b64(4 * ((der.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()), der.data(),
                            static_cast<int>(der.size()));
    b64.resize(static_cast<std::size_t>(n));
    std::string out;
    out.reserve(b64.size() + b64.size() / 16);
    for (std::size_t i = 0; i < b64.size(); ++i) {
        // IOS: a line break after every 64 base64 characters (smallstep/certificates#2100).
        if (line_breaks && i > 0 && i % 64 == 0)
            out += "%0A";
        switch (b64[i]) {
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
                out += b64[i];
        }
    }
    if (line_breaks && !b64.empty())
        out += "%0A";
    return out;
}

// ---------------------------------------------------------------------------------------------
scep_client::scep_client(client_options options) : options_(std::move(options)) {
    if (!options_.now)
        options_.now = wall_clock_now;
    load_providers(options_.legacy_crypto);
    // http://host[:port][/path]
    std::string_view u = options_.url;
    constexpr std::string_view scheme = "http://";
    if (u.size() < scheme.size() || !iequals(u.substr(0, scheme.size()), scheme)) {
        throw std::invalid_argument("SCEP URL must start with http:// (got '" + options_.url +
                                    "')");
    }
    u.remove_prefix(scheme.size());
    auto slash = u.find('/');
    std::string_view authority = u.substr(0, slash);
    std::string_view path = slash == std::string_view::npos ? std::string_view{} : u.substr(slash);
    if (auto q = path.find('?'); q != std::string_view::npos)
        path = path.substr(0, q);
    if (authority.empty())
        throw std::invalid_argument("SCEP URL has no host: " + options_.url);
    if (authority.front() == '[') {  // [::1]:8080
        auto close = authority.find(']');
        if (close == std::string_view::npos)
            throw std::invalid_argument("bad IPv6 host in URL");
        host_ = std::string{authority.substr(1, close - 1)};
        auto rest = authority.substr(close + 1);
        port_ = rest.size() > 1 && rest.front() == ':' ? std::string{rest.substr(1)} : "80";
    } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
        host_ = std::string{authority.substr(0, colon)};
        port_ = std::string{authority.substr(colon + 1)};
    } else {
        host_ = std::string{authority};
        port_ = "80";
    }
    if (host_.empty() || port_.empty() || !std::all_of(port_.begin(), port_.end(), [](char c) {
            return std::isdigit(static_cast<unsigned char>(c));
        })) {
        throw std::invalid_argument("bad host or port in SCEP URL: " + options_.url);
    }
    // IOS appends /pkiclient.exe to the configured path; no path means /cgi-bin
    // (ios-pki-model.md §2).
    std::string p{path};
    while (!p.empty() && p.back() == '/')
        p.pop_back();
    if (p.empty())
        p = "/cgi-bin";
    if (!options_.exact_path && !ends_with_icase(p, "/pkiclient.exe"))
        p += "/pkiclient.exe";
    path_ = std::move(p);
}

std::string scep_client::target(std::string_view operation, std::string_view message) const {
    std::string t = fmt::format("{}?operation={}", path_, operation);
    if (!message.empty())
        t += fmt::format("&message={}", message);
    return t;
}

client_result<scep_client::http_answer> scep_client::http_get(const std::string& target) const {
    return exchange(false, target, nullptr);
}

client_result<scep_client::http_answer> scep_client::http_post(const std::string& target,
                                                               const bytes& body) const {
    return exchange(true, target, &body);
}

// One connection per request, as IOS (HTTP/1.0). A private io_context per call keeps the
// client free of shared state, so a thread pool can share one scep_client.
client_result<scep_client::http_answer> scep_client::exchange(bool post, const std::string& target,
                                                              const bytes* body) const {
    net::io_context ioc;
    tcp::resolver resolver{ioc};
    beast::error_code ec;
    auto endpoints = resolver.resolve(host_, port_, ec);
    if (ec)
        return tl::unexpected(make_failure(client_error::resolve_failed, ec.message()));

    beast::tcp_stream stream{ioc};
    stream.expires_after(options_.connect_timeout);
    beast::error_code connect_ec;
    stream.async_connect(endpoints,
                         [&](beast::error_code e, const tcp::endpoint&) { connect_ec = e; });
    ioc.run();
    if (connect_ec) {
        if (connect_ec == beast::error::timeout) {
            return tl::unexpected(
                make_failure(client_error::connect_timeout,
                             fmt::format("no answer from {}:{} within {} ms", host_, port_,
                                         options_.connect_timeout.count())));
        }
        if (connect_ec == net::error::connection_refused) {
            return tl::unexpected(
                make_failure(client_error::connect_refused, fmt::format("{}:{}", host_, port_)));
        }
        return tl::unexpected(make_failure(client_error::network, connect_ec.message()));
    }

    http::request<http::string_body> req{post ? http::verb::post : http::verb::get, target,
                                         options_.http_version};
    const std::string host = host_.find(':') != std::string::npos ? "[" + host_ + "]" : host_;
    req.set(http::field::host, port_ == "80" ? host : host + ":" + port_);
    req.set(http::field::user_agent, options_.user_agent);
    if (options_.http_version >= 11)
        req.set(http::field::connection, "close");
    if (post) {
        // scep-wire §0.9: the server must not require it, but we send the RFC's type.
        req.set(http::field::content_type, "application/x-pki-message");
        req.body().assign(body->begin(), body->end());
        req.prepare_payload();
    }

    http::response_parser<http::string_body> parser;
    parser.body_limit(options_.max_body);
    beast::flat_buffer buffer;
    beast::error_code io_ec;
    bool read_started = false;
    stream.expires_after(options_.read_timeout);
    http::async_write(stream, req, [&](beast::error_code e, std::size_t) {
        if (e) {
            io_ec = e;
            return;
        }
        read_started = true;
        http::async_read(stream, buffer, parser,
                         [&](beast::error_code e2, std::size_t) { io_ec = e2; });
    });
    ioc.restart();
    ioc.run();
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    if (io_ec) {
        if (io_ec == beast::error::timeout) {
            return tl::unexpected(make_failure(
                client_error::read_timeout,
                fmt::format("no complete answer within {} ms", options_.read_timeout.count())));
        }
        return tl::unexpected(make_failure(
            client_error::network,
            fmt::format("{} ({})", io_ec.message(), read_started ? "reading" : "sending")));
    }
    auto& res = parser.get();
    http_answer a;
    a.status = res.result_int();
    a.content_type = std::string{res[http::field::content_type]};
    a.body = std::move(res.body());
    return a;
}

// ---------------------------------------------------------------------------------------------
client_result<ca_caps> scep_client::get_ca_caps() const {
    auto a = http_get(target("GetCACaps", percent_encode(options_.ca_identifier)));
    if (!a)
        return tl::unexpected(a.error());
    ca_caps caps;
    caps.http_status = a->status;
    // RFC 8894 §3.5.2: an HTTP error or an empty body means "nothing supported".
    if (a->status != 200)
        return caps;
    std::string_view body = a->body;
    while (!body.empty()) {
        auto nl = body.find('\n');
        auto line = trim(body.substr(0, nl));
        if (!line.empty())
            caps.keywords.push_back(std::move(line));
        if (nl == std::string_view::npos)
            break;
        body.remove_prefix(nl + 1);
    }
    return caps;
}

client_result<ca_certs> scep_client::get_ca_cert() const {
    auto a = http_get(target("GetCACert", percent_encode(options_.ca_identifier)));
    if (!a)
        return tl::unexpected(a.error());
    if (a->status != 200) {
        return tl::unexpected(make_failure(client_error::http_status, snippet(a->body), a->status));
    }
    byte_view der{reinterpret_cast<const std::uint8_t*>(a->body.data()), a->body.size()};
    auto bundle = parse_certs_only(der);
    if (!bundle) {
        return tl::unexpected(make_failure(
            client_error::bad_response,
            fmt::format("GetCACert body ({}, {} bytes) is neither a certificate nor a PKCS#7: {}",
                        a->content_type.empty() ? "no Content-Type" : a->content_type,
                        a->body.size(), bundle.error().message())));
    }
    return classify_ca_certs(std::move(bundle->certs), a->content_type);
}

client_result<next_ca_result> scep_client::get_next_ca_cert(const ca_certs& current) const {
    auto a = http_get(target("GetNextCACert", percent_encode(options_.ca_identifier)));
    if (!a)
        return tl::unexpected(a.error());
    next_ca_result r;
    r.http_status = a->status;
    // IOS CS answers 404 until the shadow CA exists (issue 3 §2); the client retries.
    if (a->status == 404)
        return r;
    if (a->status != 200) {
        return tl::unexpected(make_failure(client_error::http_status, snippet(a->body), a->status));
    }
    byte_view der{reinterpret_cast<const std::uint8_t*>(a->body.data()), a->body.size()};
    auto trusted = current.all();
    auto parsed = parse_get_next_ca_cert(der, trusted);
    if (!parsed) {
        return tl::unexpected(make_failure(
            client_error::bad_response,
            "GetNextCACert answer not signed by the current CA/RA: " + parsed.error().message()));
    }
    r.available = true;
    r.signer = std::move(parsed->signer);
    // RFC 8894 §4.7.1 puts them in the content; sscep and jscep read the outer set (§1.8).
    r.certs = !parsed->content_certs.empty() ? std::move(parsed->content_certs)
                                             : std::move(parsed->outer_certs);
    if (r.certs.empty()) {
        return tl::unexpected(
            make_failure(client_error::bad_response, "GetNextCACert answer has no certificate"));
    }
    return r;
}

client_result<cert_rep> scep_client::pki_operation(const bytes& message, const ca_caps& caps,
                                                   const ca_certs& ca, X509* recipient_cert,
                                                   EVP_PKEY* recipient_key) const {
    bool post = options_.method == pki_operation_method::post ||
                (options_.method == pki_operation_method::automatic && caps.post_supported());
    auto a = post ? http_post(target("PKIOperation", {}), message)
                  : http_get(target("PKIOperation",
                                    encode_get_message(message, options_.ios_line_breaks)));
    if (!a)
        return tl::unexpected(a.error());
    if (a->status != 200) {
        return tl::unexpected(make_failure(client_error::http_status, snippet(a->body), a->status));
    }
    byte_view der{reinterpret_cast<const std::uint8_t*>(a->body.data()), a->body.size()};
    auto trusted = ca.all();
    decode_options opts;
    opts.allow_legacy = options_.legacy_crypto;
    auto rep = decode_cert_rep(der, recipient_cert, recipient_key, trusted, opts);
    if (!rep) {
        std::string text = "CertRep unreadable: " + rep.error().message();
        const auto ec = rep.error();
        // micromdm scepserver answers in single DES whatever we sent (scep-wire §0.2).
        if (!options_.legacy_crypto &&
            (ec == error::decrypt_failed || ec == error::legacy_algorithm_disabled ||
             ec == error::unsupported_algorithm)) {
            text += " (a single-DES or MD5 reply? try --legacy-crypto)";
        }
        return tl::unexpected(make_failure(client_error::bad_response, std::move(text)));
    }
    return std::move(*rep);
}

namespace {

client_result<enroll_result> apply_rep(cert_rep rep, const pending_enrollment& pending,
                                       const bytes& nonce, enroll_result result) {
    if (rep.transaction_id != pending.transaction_id) {
        return tl::unexpected(make_failure(
            client_error::bad_response, fmt::format("CertRep transactionID '{}' is not ours ('{}')",
                                                    rep.transaction_id, pending.transaction_id)));
    }
    // RFC 8894 §3.2.1.5: recipientNonce = our senderNonce (certmonger checks it too).
    if (!rep.recipient_nonce.empty() && rep.recipient_nonce != nonce) {
        return tl::unexpected(
            make_failure(client_error::bad_response, "CertRep recipientNonce is not our nonce"));
    }
    switch (rep.status) {
        case pki_status::failure: {
            auto f = make_failure(client_error::scep_failure, rep.fail_info_text);
            f.failure = rep.failure.value_or(fail_info::bad_request);
            f.http_status = 200;
            return tl::unexpected(std::move(f));
        }
        case pki_status::pending:
            result.status = pki_status::pending;
            return result;
        case pki_status::success:
            break;
    }
    result.cert = pick_issued(rep.certs, pending.key.get(), result.chain);
    if (!result.cert) {
        return tl::unexpected(
            make_failure(client_error::bad_response, "CertRep SUCCESS without a certificate"));
    }
    result.status = pki_status::success;
    return result;
}

}  // namespace

client_result<enroll_result> scep_client::enroll(const enroll_request& request, const ca_caps& caps,
                                                 const ca_certs& ca,
                                                 const poll_options& poll) const {
    const bool forward = request.forward_csr != nullptr;
    if (request.key == nullptr && !forward) {
        return tl::unexpected(make_failure(client_error::bad_request, "no key"));
    }
    if (!ca.encryption) {
        return tl::unexpected(make_failure(client_error::bad_request, "no CA certificate"));
    }
    int digest = caps.digest_nid(options_.legacy_crypto);
    int cipher = caps.cipher_nid(options_.legacy_crypto);
    const bool renewal = request.renew_cert != nullptr;
    if (renewal && request.renew_key == nullptr) {
        return tl::unexpected(make_failure(client_error::bad_request, "renewal needs the old key"));
    }
    if (forward && (request.ra_cert == nullptr || request.ra_key == nullptr)) {
        return tl::unexpected(
            make_failure(client_error::bad_request, "forwarding a CSR needs the RA certificate"));
    }

    bytes csr_der;
    pending_enrollment pending;
    if (forward) {
        // Issue 4 §2: the RA sends the client's CSR unchanged, signed with its own certificate;
        // the CA answers (and encrypts) to the RA.
        EVP_PKEY* client_key = X509_REQ_get0_pubkey(request.forward_csr);
        if (client_key == nullptr) {
            return tl::unexpected(make_failure(client_error::bad_request, "CSR without a key"));
        }
        csr_der = to_der(request.forward_csr);
        pending.transaction_id = request.transaction_id.empty() ? transaction_id_for(client_key)
                                                                : request.transaction_id;
        pending.subject = copy(X509_REQ_get_subject_name(request.forward_csr));
        pending.key = share(client_key);
        pending.signer_cert = share(request.ra_cert);
        pending.signer_key = share(request.ra_key);
        pending.cipher_nid = cipher;
        pending.digest_nid = digest;
    } else {
        try {
            csr_options co;
            co.challenge_password = request.challenge;
            co.dns_names = request.dns_names;
            co.ip_addresses = request.ip_addresses;
            // The CSR's own signature: SHA-256 unless the legacy MD5 path was chosen.
            co.digest_nid = digest == NID_md5 ? NID_md5 : NID_sha256;
            auto csr = make_csr(request.key, request.subject, co);
            csr_der = to_der(csr.get());
            auto r = resume(request.key, request.subject, caps, request.transaction_id);
            if (!r)
                return tl::unexpected(r.error());
            pending = std::move(*r);
        } catch (const std::exception& e) {
            return tl::unexpected(make_failure(client_error::bad_request, e.what()));
        }
    }
    if (renewal) {
        // RFC 8894 §2.3: a renewal is signed with the existing certificate; the reply is
        // encrypted to it.
        pending.signer_cert = share(request.renew_cert);
        pending.signer_key = share(request.renew_key);
    }

    request_params p;
    p.type = renewal && !request.renewal_as_pkcs_req ? message_type::renewal_req
                                                     : message_type::pkcs_req;
    p.message_data = std::move(csr_der);
    p.signer_cert = pending.signer_cert.get();
    p.signer_key = pending.signer_key.get();
    p.recipients = {ca.encryption.get()};
    p.cipher_nid = cipher;
    p.digest_nid = digest;
    p.transaction_id = pending.transaction_id;
    p.sender_nonce = fresh_nonce();
    p.signing_time = options_.now();
    auto msg = encode_pki_request(p);
    if (!msg) {
        return tl::unexpected(
            make_failure(client_error::bad_request, "pkiMessage: " + msg.error().message()));
    }
    auto rep = pki_operation(*msg, caps, ca, pending.signer_cert.get(), pending.signer_key.get());
    if (!rep)
        return tl::unexpected(rep.error());

    enroll_result result;
    result.transaction_id = pending.transaction_id;
    result.cipher_nid = cipher;
    result.digest_nid = digest;
    auto first = apply_rep(std::move(*rep), pending, p.sender_nonce, std::move(result));
    if (!first)
        return first;
    if (first->status == pki_status::success) {
        first->pending = std::move(pending);
        return first;
    }
    enroll_result so_far = std::move(*first);
    return poll_loop(pending, caps, ca, poll, false, std::move(so_far));
}

client_result<enroll_result> scep_client::poll(const pending_enrollment& pending,
                                               const ca_caps& caps, const ca_certs& ca,
                                               const poll_options& poll) const {
    enroll_result r;
    r.transaction_id = pending.transaction_id;
    r.cipher_nid = pending.cipher_nid;
    r.digest_nid = pending.digest_nid;
    return poll_loop(pending, caps, ca, poll, true, std::move(r));
}

client_result<pending_enrollment> scep_client::resume(EVP_PKEY* key, std::string_view subject,
                                                      const ca_caps& caps,
                                                      std::string transaction_id) const {
    pending_enrollment p;
    try {
        auto name = parse_dn(subject);
        if (!name) {
            return tl::unexpected(
                make_failure(client_error::bad_request, fmt::format("bad subject '{}'", subject)));
        }
        p.subject = std::move(*name);
        p.transaction_id =
            transaction_id.empty() ? transaction_id_for(key) : std::move(transaction_id);
        // RFC 8894 §2.3: the self-signed signer SHOULD have the CSR's subject and key. Valid
        // from an hour ago (clock skew) for a day (polls).
        auto now = options_.now();
        timers::validity v{now - std::chrono::hours{1}, now + std::chrono::hours{24}};
        p.signer_cert = make_self_signed_signer(key, subject, v, NID_sha256);
        p.signer_key = share(key);
        p.key = share(key);
    } catch (const std::exception& e) {
        return tl::unexpected(make_failure(client_error::bad_request, e.what()));
    }
    p.cipher_nid = caps.cipher_nid(options_.legacy_crypto);
    p.digest_nid = caps.digest_nid(options_.legacy_crypto);
    return p;
}

client_result<enroll_result> scep_client::poll_loop(const pending_enrollment& pending,
                                                    const ca_caps& caps, const ca_certs& ca,
                                                    const poll_options& poll,
                                                    bool first_poll_at_once,
                                                    enroll_result result) const {
    auto sleep = poll.sleep ? poll.sleep
                            : [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
    bytes issuer_and_subject =
        encode_issuer_and_subject(X509_get_subject_name(ca.ca.get()), pending.subject.get());
    for (unsigned i = 0; i < poll.max_polls; ++i) {
        if (i > 0 || !first_poll_at_once)
            sleep(poll.interval);
        request_params p;
        p.type = message_type::cert_poll;
        p.message_data = issuer_and_subject;
        p.signer_cert = pending.signer_cert.get();
        p.signer_key = pending.signer_key.get();
        p.recipients = {ca.encryption.get()};
        p.cipher_nid = pending.cipher_nid;
        p.digest_nid = pending.digest_nid;
        p.transaction_id = pending.transaction_id;
        p.sender_nonce = fresh_nonce();
        p.signing_time = options_.now();
        auto msg = encode_pki_request(p);
        if (!msg) {
            return tl::unexpected(
                make_failure(client_error::bad_request, "CertPoll: " + msg.error().message()));
        }
        auto rep =
            pki_operation(*msg, caps, ca, pending.signer_cert.get(), pending.signer_key.get());
        if (!rep)
            return tl::unexpected(rep.error());
        ++result.polls;
        auto r = apply_rep(std::move(*rep), pending, p.sender_nonce, std::move(result));
        if (!r)
            return r;
        result = std::move(*r);
        if (result.status == pki_status::success)
            break;
    }
    result.pending.transaction_id = pending.transaction_id;
    result.pending.signer_cert = share(pending.signer_cert.get());
    result.pending.signer_key = share(pending.signer_key.get());
    if (pending.key)
        result.pending.key = share(pending.key.get());
    result.pending.subject = copy(pending.subject.get());
    result.pending.cipher_nid = pending.cipher_nid;
    result.pending.digest_nid = pending.digest_nid;
    return result;
}

client_result<x509_crl_ptr> scep_client::get_crl(const client_identity& me, X509* of,
                                                 const ca_caps& caps, const ca_certs& ca) const {
    if (me.cert == nullptr || me.key == nullptr || of == nullptr || !ca.encryption) {
        return tl::unexpected(
            make_failure(client_error::bad_request, "GetCRL needs a certificate and its key"));
    }
    request_params p;
    p.type = message_type::get_crl;
    p.message_data = encode_issuer_and_serial(of);
    p.signer_cert = me.cert;
    p.signer_key = me.key;
    p.recipients = {ca.encryption.get()};
    p.cipher_nid = caps.cipher_nid(options_.legacy_crypto);
    p.digest_nid = caps.digest_nid(options_.legacy_crypto);
    p.transaction_id = to_hex(fresh_nonce());
    p.sender_nonce = fresh_nonce();
    p.signing_time = options_.now();
    auto msg = encode_pki_request(p);
    if (!msg) {
        return tl::unexpected(
            make_failure(client_error::bad_request, "GetCRL: " + msg.error().message()));
    }
    auto rep = pki_operation(*msg, caps, ca, me.cert, me.key);
    if (!rep)
        return tl::unexpected(rep.error());
    if (rep->status == pki_status::failure) {
        auto f = make_failure(client_error::scep_failure, rep->fail_info_text, 200);
        f.failure = rep->failure.value_or(fail_info::bad_request);
        return tl::unexpected(std::move(f));
    }
    if (rep->status != pki_status::success || rep->crls.empty()) {
        return tl::unexpected(
            make_failure(client_error::bad_response,
                         fmt::format("GetCRL answered {} without a CRL", to_string(rep->status))));
    }
    return std::move(rep->crls.front());
}

client_result<x509_ptr> scep_client::get_cert(const client_identity& me, const ASN1_INTEGER* serial,
                                              const ca_caps& caps, const ca_certs& ca) const {
    if (me.cert == nullptr || me.key == nullptr || serial == nullptr || !ca.ca) {
        return tl::unexpected(
            make_failure(client_error::bad_request, "GetCert needs a certificate and its key"));
    }
    request_params p;
    p.type = message_type::get_cert;
    p.message_data = encode_issuer_and_serial(X509_get_subject_name(ca.ca.get()), serial);
    p.signer_cert = me.cert;
    p.signer_key = me.key;
    p.recipients = {ca.encryption.get()};
    p.cipher_nid = caps.cipher_nid(options_.legacy_crypto);
    p.digest_nid = caps.digest_nid(options_.legacy_crypto);
    p.transaction_id = to_hex(fresh_nonce());
    p.sender_nonce = fresh_nonce();
    p.signing_time = options_.now();
    auto msg = encode_pki_request(p);
    if (!msg) {
        return tl::unexpected(
            make_failure(client_error::bad_request, "GetCert: " + msg.error().message()));
    }
    auto rep = pki_operation(*msg, caps, ca, me.cert, me.key);
    if (!rep)
        return tl::unexpected(rep.error());
    if (rep->status == pki_status::failure) {
        auto f = make_failure(client_error::scep_failure, rep->fail_info_text, 200);
        f.failure = rep->failure.value_or(fail_info::bad_request);
        return tl::unexpected(std::move(f));
    }
    if (rep->status != pki_status::success || rep->certs.empty()) {
        return tl::unexpected(make_failure(
            client_error::bad_response,
            fmt::format("GetCert answered {} without a certificate", to_string(rep->status))));
    }
    return std::move(rep->certs.front());
}

}  // namespace pkisim::scep
