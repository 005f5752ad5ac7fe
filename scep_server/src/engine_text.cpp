#include "engine_text.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

#include <date/date.h>
#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "pkisim/scep/ca_engine.hpp"  // ios_countdown
#include "pkisim/scep/codec.hpp"      // transaction_id_for
#include "pkisim/scep/crypto.hpp"

namespace pkisim::scep::detail {

std::string as_string(const bytes& b) {
    return {b.begin(), b.end()};
}

http_answer cert_rep_answer(cert_rep_params params, std::string detail) {
    auto der = encode_cert_rep(params);
    if (!der && params.digest_nid != NID_sha256) {
        params.digest_nid = NID_sha256;
        der = encode_cert_rep(params);
    }
    if (!der) {
        return internal_error_answer("encode CertRep: " + der.error().message());
    }
    return {200, std::string{pki_message_type}, as_string(*der), false, std::move(detail)};
}

http_answer ios_not_found(std::string detail) {
    http_answer a;
    a.status = 404;
    a.ios_404 = true;
    a.body = "404 Not Found\r\n";
    a.detail = std::move(detail);
    return a;
}

std::string md5_upper_hex(const bytes& data) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned int n = 0;
    EVP_Digest(data.data(), data.size(), md.data(), &n, EVP_md5(), nullptr);
    std::string out;
    for (unsigned i = 0; i < n; ++i)
        out += fmt::format("{:02X}", md[i]);
    return out;
}

std::string key_hash(X509* cert) {
    // Issue 12 §3: the SubjectPublicKeyInfo as the certificate carries it (what i2d_PUBKEY of
    // its key gives, byte for byte), without OpenSSL 3's encoder context per call.
    unsigned char* der = nullptr;
    const int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
    if (len <= 0)
        return transaction_id_for(X509_get0_pubkey(cert));
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned int md_len = 0;
    const int ok =
        EVP_Digest(der, static_cast<std::size_t>(len), md.data(), &md_len, EVP_sha1(), nullptr);
    OPENSSL_free(der);
    if (ok != 1)
        return transaction_id_for(X509_get0_pubkey(cert));
    std::string hex = to_hex(byte_view{md.data(), md_len});
    std::transform(hex.begin(), hex.end(), hex.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::toupper(ch)); });
    return hex;
}

std::string_view grant_text(timers::grant_mode g) {
    switch (g) {
        case timers::grant_mode::auto_grant:
            return "auto";
        case timers::grant_mode::none:
            return "none";
        case timers::grant_mode::ra_auto:
            return "ra-auto";
        case timers::grant_mode::manual:
            break;
    }
    return "manual";
}

std::string_view db_level_text(timers::database_level d) {
    switch (d) {
        case timers::database_level::minimum:
            return "Minimum - no cert data written to storage";
        case timers::database_level::names:
            return "Names - noncert data written to storage";
        case timers::database_level::complete:
            return "Complete - all issued certs written as <serialnum>.cer";
    }
    return "";
}

std::vector<std::string_view> words(std::string_view line) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t'))
            ++i;
        const std::size_t start = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t')
            ++i;
        if (i > start)
            out.push_back(line.substr(start, i - start));
    }
    return out;
}

std::optional<std::uint64_t> parse_u64(std::string_view s, int base) {
    std::uint64_t v = 0;
    if (s.empty())
        return std::nullopt;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
    if (ec != std::errc{} || p != s.data() + s.size())
        return std::nullopt;
    return v;
}

evp_pkey_ptr load_stored_key(std::string_view pem, const engine_options& options,
                             std::string_view what) {
    auto key = decrypt_private_key_pem(pem, options.passphrase);
    if (!key) {
        if (key.error() == make_error_code(error::wrong_passphrase)) {
            throw startup_error(exit_status::wrong_passphrase,
                                fmt::format("wrong passphrase for the {} key in {}", what,
                                            options.data_dir.string()));
        }
        throw startup_error(exit_status::store, fmt::format("the stored {} key is unusable: {}",
                                                            what, key.error().message()));
    }
    return std::move(*key);
}

std::string request_section(std::string_view title, std::string_view rows) {
    return fmt::format(
        "{}:\nReqID  State      Fingerprint                      SubjectName\n"
        "--------------------------------------------------------------\n{}",
        title, rows);
}

namespace {
struct ios_key {
    int nid;
    std::string_view name;
};
// The first seven are [OBS] in the captures (research §1.3, S13); l, st, ea, dc are our choice
// (IOS `subject-name` keywords, lower case like the ones seen). Others: OpenSSL's short name.
constexpr std::array<ios_key, 11> ios_keys = {{{NID_commonName, "cn"},
                                               {NID_organizationName, "o"},
                                               {NID_organizationalUnitName, "ou"},
                                               {NID_countryName, "c"},
                                               {NID_serialNumber, "serialNumber"},
                                               {NID_pkcs9_unstructuredName, "hostname"},
                                               {NID_pkcs9_unstructuredAddress, "ipaddress"},
                                               {NID_localityName, "l"},
                                               {NID_stateOrProvinceName, "st"},
                                               {NID_pkcs9_emailAddress, "ea"},
                                               {NID_domainComponent, "dc"}}};
}  // namespace

std::string ios_name(const X509_NAME* name, char separator) {
    std::string out;
    if (name == nullptr)
        return out;
    int previous_set = -1;
    for (int i = 0; i < X509_NAME_entry_count(name); ++i) {
        const X509_NAME_ENTRY* e = X509_NAME_get_entry(name, i);
        const int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
        const auto* known = std::find_if(ios_keys.begin(), ios_keys.end(),
                                         [&](const ios_key& k) { return k.nid == nid; });
        const std::string key =
            known != ios_keys.end() ? std::string{known->name} : name_entry_key(e);
        const std::string value = name_entry_value(e);
        const int set = X509_NAME_ENTRY_set(e);
        if (i > 0)
            out += set == previous_set ? '+' : separator;
        previous_set = set;
        out += key;
        out += '=';
        out += value;
    }
    return out;
}

std::string_view ios_request_state(request_state s) {
    switch (s) {
        case request_state::pending:
            return "pending";
        case request_state::granted:
        case request_state::issued:
            return "granted";
        case request_state::rejected:
            return "rejected";
        case request_state::expired:
            return "expired";
    }
    return "pending";
}

std::string request_row(const request_record& r) {
    std::string subject = r.subject;
    if (auto csr = x509_req_from_der(r.csr_der))
        subject = ios_name(X509_REQ_get_subject_name(csr->get()), ',');
    return fmt::format("{:<7}{:<11}{:<33}{}\n", r.id, ios_request_state(r.state), r.fingerprint,
                       subject);
}

std::string certificate_row(std::string_view serial_hex, time_point not_before,
                            time_point not_after, std::string_view subject) {
    return fmt::format("{:<8}{:<25}{:<26}{}\n", serial_hex, timers::to_ios_time(not_before),
                       timers::to_ios_time(not_after), subject);
}

std::string pkisim_section_title(std::string_view server_name) {
    return fmt::format("pkisim additions for {} (not IOS output):\n", server_name);
}

std::string timer_section(std::string_view title, std::vector<timer_entry> entries,
                          time_point now) {
    std::sort(entries.begin(), entries.end(),
              [](const timer_entry& a, const timer_entry& b) { return a.at < b.at; });
    if (entries.empty())
        return {};
    std::string s = fmt::format("{}\n", title);
    auto line = [&](const timer_entry& e) {
        return fmt::format("{:>16}  ({})", ios_countdown(e.at - now),
                           date::format("%FT%TZ", date::floor<std::chrono::seconds>(e.at)));
    };
    s += fmt::format("|{}\n", line(entries.front()));
    for (const auto& e : entries)
        s += fmt::format("  |{} {}\n", line(e), e.name);
    return s;
}

}  // namespace pkisim::scep::detail
