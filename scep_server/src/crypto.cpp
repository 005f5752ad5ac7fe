#include "pkisim/scep/crypto.hpp"
#include "pkisim/scep/key_protection.hpp"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

namespace pkisim::scep {

namespace {

[[noreturn]] void throw_openssl(std::string_view what) {
    throw std::runtime_error(fmt::format("{}: {}", what, drain_openssl_errors()));
}

tl::unexpected<std::error_code> fail(error e) {
    ERR_clear_error();
    return tl::unexpected(make_error_code(e));
}

using asn1_enumerated_ptr =
    std::unique_ptr<ASN1_ENUMERATED, openssl_deleter<ASN1_ENUMERATED, ASN1_ENUMERATED_free>>;
using general_names_ptr =
    std::unique_ptr<GENERAL_NAMES, openssl_deleter<GENERAL_NAMES, GENERAL_NAMES_free>>;
using crl_dist_points_ptr =
    std::unique_ptr<CRL_DIST_POINTS, openssl_deleter<CRL_DIST_POINTS, CRL_DIST_POINTS_free>>;
void free_extension_stack(STACK_OF(X509_EXTENSION) * s) noexcept {
    sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free);
}
using extension_stack_ptr =
    std::unique_ptr<STACK_OF(X509_EXTENSION),
                    openssl_deleter<STACK_OF(X509_EXTENSION), free_extension_stack>>;

// Adds an extension written in openssl.cnf syntax ("critical,CA:TRUE"). `value` is always one
// of our literals, never user text.
bool add_conf_ext(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
    x509_extension_ptr ext{X509V3_EXT_conf_nid(nullptr, ctx, nid, value)};
    return ext && X509_add_ext(cert, ext.get(), -1) == 1;
}

// CRL distribution point with one URI, built from structures so that a URL with commas or
// colons is not parsed as openssl.cnf syntax.
bool add_cdp(X509* cert, const std::string& url) {
    crl_dist_points_ptr points{sk_DIST_POINT_new_null()};
    DIST_POINT* point = DIST_POINT_new();
    if (!points || point == nullptr) {
        DIST_POINT_free(point);
        return false;
    }
    if (sk_DIST_POINT_push(points.get(), point) <= 0) {
        DIST_POINT_free(point);
        return false;
    }
    point->distpoint = DIST_POINT_NAME_new();
    if (point->distpoint == nullptr) {
        return false;
    }
    point->distpoint->type = 0;  // fullName
    point->distpoint->name.fullname = GENERAL_NAMES_new();
    GENERAL_NAME* name = GENERAL_NAME_new();
    ASN1_IA5STRING* uri = ASN1_IA5STRING_new();
    if (point->distpoint->name.fullname == nullptr || name == nullptr || uri == nullptr ||
        ASN1_STRING_set(uri, url.data(), static_cast<int>(url.size())) != 1) {
        GENERAL_NAME_free(name);
        ASN1_IA5STRING_free(uri);
        return false;
    }
    GENERAL_NAME_set0_value(name, GEN_URI, uri);
    if (sk_GENERAL_NAME_push(point->distpoint->name.fullname, name) <= 0) {
        GENERAL_NAME_free(name);
        return false;
    }
    return X509_add1_ext_i2d(cert, NID_crl_distribution_points, points.get(), 0,
                             X509V3_ADD_DEFAULT) == 1;
}

// Issue 11 §2.9: authorityInfoAccess with an id-ad-ocsp and/or id-ad-caIssuers URI (RFC 5280
// §4.2.2.1), from structures like the CDP.
bool add_aia(X509* cert, const std::string& ocsp_url, const std::string& ca_issuers_url) {
    using aia_ptr =
        std::unique_ptr<AUTHORITY_INFO_ACCESS,
                        openssl_deleter<AUTHORITY_INFO_ACCESS, AUTHORITY_INFO_ACCESS_free>>;
    aia_ptr aia{AUTHORITY_INFO_ACCESS_new()};
    if (!aia)
        return false;
    for (const auto& [nid, url] :
         {std::pair{NID_ad_OCSP, &ocsp_url}, std::pair{NID_ad_ca_issuers, &ca_issuers_url}}) {
        if (url->empty())
            continue;
        ACCESS_DESCRIPTION* ad = ACCESS_DESCRIPTION_new();
        ASN1_IA5STRING* uri = ASN1_IA5STRING_new();
        if (ad == nullptr || uri == nullptr ||
            ASN1_STRING_set(uri, url->data(), static_cast<int>(url->size())) != 1) {
            ACCESS_DESCRIPTION_free(ad);
            ASN1_IA5STRING_free(uri);
            return false;
        }
        ASN1_OBJECT_free(ad->method);
        ad->method = OBJ_nid2obj(nid);
        GENERAL_NAME_set0_value(ad->location, GEN_URI, uri);
        if (sk_ACCESS_DESCRIPTION_push(aia.get(), ad) <= 0) {
            ACCESS_DESCRIPTION_free(ad);
            return false;
        }
    }
    return X509_add1_ext_i2d(cert, NID_info_access, aia.get(), 0, X509V3_ADD_DEFAULT) == 1;
}

bool set_serial(X509* cert, std::uint64_t serial) {
    asn1_integer_ptr s{ASN1_INTEGER_new()};
    return s && ASN1_INTEGER_set_uint64(s.get(), serial) == 1 &&
           X509_set_serialNumber(cert, s.get()) == 1;
}

bool set_validity(X509* cert, time_point from, time_point to) {
    const asn1_time_ptr nb = to_asn1_time(from);
    const asn1_time_ptr na = to_asn1_time(to);
    return X509_set1_notBefore(cert, nb.get()) == 1 && X509_set1_notAfter(cert, na.get()) == 1;
}

// Attribute names accepted in DN strings (openssl short names plus what IOS prints).
int dn_attribute_nid(std::string key) {
    std::transform(key.begin(), key.end(), key.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    struct alias {
        const char* name;
        int nid;
    };
    static constexpr alias aliases[] = {
        {"cn", NID_commonName},
        {"o", NID_organizationName},
        {"ou", NID_organizationalUnitName},
        {"c", NID_countryName},
        {"l", NID_localityName},
        {"st", NID_stateOrProvinceName},
        {"s", NID_stateOrProvinceName},
        {"street", NID_streetAddress},
        {"dc", NID_domainComponent},
        {"uid", NID_userId},
        {"e", NID_pkcs9_emailAddress},
        {"ea", NID_pkcs9_emailAddress},
        {"email", NID_pkcs9_emailAddress},
        {"emailaddress", NID_pkcs9_emailAddress},
        {"serialnumber", NID_serialNumber},
        {"sn", NID_surname},
        {"gn", NID_givenName},
        {"title", NID_title},
        // IOS puts the hostname and IP address into these (`subject-name`, `ip-address`).
        {"unstructuredname", NID_pkcs9_unstructuredName},
        {"unstructuredaddress", NID_pkcs9_unstructuredAddress},
        {"hostname", NID_pkcs9_unstructuredName},
        {"ipaddress", NID_pkcs9_unstructuredAddress},
    };
    for (const alias& a : aliases) {
        if (key == a.name) {
            return a.nid;
        }
    }
    return NID_undef;
}

bool is_blank(char c) {
    return c == ' ' || c == '\t';
}

std::string trim(std::string_view s) {
    while (!s.empty() && is_blank(s.front())) {
        s.remove_prefix(1);
    }
    while (!s.empty() && is_blank(s.back())) {
        s.remove_suffix(1);
    }
    return std::string{s};
}

// Keyword candidate at `pos`: letters/digits then optional blanks then '='. Returns the length up
// to and including '=', 0 if none.
std::size_t keyword_at(std::string_view text, std::size_t pos, std::string* key) {
    std::size_t i = pos;
    while (i < text.size() && (std::isalnum(static_cast<unsigned char>(text[i])) != 0)) {
        ++i;
    }
    if (i == pos) {
        return 0;
    }
    std::string candidate{text.substr(pos, i - pos)};
    while (i < text.size() && is_blank(text[i])) {
        ++i;
    }
    if (i >= text.size() || text[i] != '=' || dn_attribute_nid(candidate) == NID_undef) {
        return 0;
    }
    *key = std::move(candidate);
    return i + 1 - pos;
}

// IOS `eku` names -> OpenSSL's extendedKeyUsage names (RFC 5280 §4.2.1.12, RFC 4945 §5.1.3.12
// for the IPsec ones).
const char* eku_name(std::string_view ios) {
    struct row {
        std::string_view ios;
        const char* openssl;
    };
    static constexpr row rows[] = {
        {"client-auth", "clientAuth"},
        {"server-auth", "serverAuth"},
        {"code-signing", "codeSigning"},
        {"email-protection", "emailProtection"},
        {"ipsec-end-system", "ipsecEndSystem"},
        {"ipsec-tunnel", "ipsecTunnel"},
        {"ipsec-user", "ipsecUser"},
        {"ocsp-signing", "OCSPSigning"},
        {"time-stamping", "timeStamping"},
    };
    for (const auto& r : rows) {
        if (r.ios == ios)
            return r.openssl;
    }
    return nullptr;
}

bool is_ec_key(const EVP_PKEY* key) {
    return key != nullptr && EVP_PKEY_is_a(key, "EC");
}

// RFC 5480 §3: an EC key never gets keyEncipherment (it cannot do key transport); RSA keys sign
// and are encrypted to (scep-wire §0.5).
const char* end_entity_key_usage(const EVP_PKEY* key) {
    return is_ec_key(key) ? "critical,digitalSignature"
                          : "critical,digitalSignature,keyEncipherment";
}

tl::expected<x509_ptr, std::error_code> make_ca_impl(EVP_PKEY* key, const X509_NAME* subject,
                                                     const timers::validity& validity,
                                                     std::uint64_t serial,
                                                     timers::hash_algorithm hash) {
    const EVP_MD* md = digest_for(hash);
    if (key == nullptr || md == nullptr) {
        return fail(key == nullptr ? error::bad_key : error::unsupported_algorithm);
    }
    x509_ptr cert{X509_new()};
    if (!cert || X509_set_version(cert.get(), 2) != 1 || !set_serial(cert.get(), serial) ||
        X509_set_subject_name(cert.get(), subject) != 1 ||
        X509_set_issuer_name(cert.get(), subject) != 1 ||
        !set_validity(cert.get(), validity.not_before, validity.not_after) ||
        X509_set_pubkey(cert.get(), key) != 1) {
        return fail(error::internal);
    }
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
    // ios-pki-model.md §1 rule 1 / scep-wire §0.5: clients check CertRep signatures with the CA
    // certificate (digitalSignature) and encrypt to it (keyEncipherment).
    if (!add_conf_ext(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE") ||
        !add_conf_ext(cert.get(), &ctx, NID_key_usage,
                      is_ec_key(key) ? "critical,keyCertSign,cRLSign,digitalSignature"
                                     : "critical,keyCertSign,cRLSign,digitalSignature,"
                                       "keyEncipherment") ||
        !add_conf_ext(cert.get(), &ctx, NID_subject_key_identifier, "hash") ||
        !add_conf_ext(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always")) {
        return fail(error::internal);
    }
    if (X509_sign(cert.get(), key, md) <= 0) {
        return fail(error::bad_key);
    }
    return cert;
}

}  // namespace

const EVP_MD* digest_for(timers::hash_algorithm h) noexcept {
    return digest_by_nid(digest_nid_for(h));
}

int digest_nid_for(timers::hash_algorithm h) noexcept {
    switch (h) {
        case timers::hash_algorithm::md5:
            return NID_md5;
        case timers::hash_algorithm::sha1:
            return NID_sha1;
        case timers::hash_algorithm::sha256:
            return NID_sha256;
        case timers::hash_algorithm::sha384:
            return NID_sha384;
        case timers::hash_algorithm::sha512:
            return NID_sha512;
    }
    return NID_sha256;
}

evp_pkey_ptr generate_rsa_key(unsigned bits) {
    evp_pkey_ptr key{EVP_RSA_gen(bits)};
    if (!key) {
        throw_openssl(fmt::format("RSA key generation ({} bits)", bits));
    }
    return key;
}

evp_pkey_ptr generate_ec_key(std::string_view curve) {
    const std::string name{curve};
    evp_pkey_ptr key{EVP_EC_gen(name.c_str())};
    if (!key) {
        throw_openssl(fmt::format("EC key generation ({})", name));
    }
    return key;
}

tl::expected<x509_name_ptr, std::error_code> parse_dn(std::string_view text) {
    x509_name_ptr name{X509_NAME_new()};
    if (!name) {
        return fail(error::internal);
    }
    // Split into (key, raw value) pairs. A keyword starts at the beginning, after a comma, or
    // after a blank: "cn=ra, ou=ioscs RA, o=cisco C=pki" has 4 entries (IOS issuer-name form).
    struct entry {
        std::string key;
        std::string value;
        bool same_rdn = false;  // joined to the previous entry by '+' (a multi-valued RDN)
    };
    std::vector<entry> entries;
    std::size_t pos = 0;
    while (pos < text.size() && (is_blank(text[pos]) || text[pos] == ',')) {
        ++pos;
    }
    std::string key;
    std::size_t kw = keyword_at(text, pos, &key);
    if (kw == 0) {
        return fail(error::bad_dn);
    }
    pos += kw;
    std::string value;
    bool same_rdn = false;
    for (;;) {
        bool next = false;
        bool next_same_rdn = false;
        std::string next_key;
        std::size_t next_len = 0;
        while (pos < text.size()) {
            const char c = text[pos];
            if (c == '\\' && pos + 1 < text.size()) {
                value += text[pos + 1];
                pos += 2;
                continue;
            }
            // A multi-valued RDN as IOS routers request it and IOS prints it
            // ("serialNumber=67109104+hostname=R15.otus.ru", ios-pki-research.md §1.3): '+' then
            // a keyword; any other '+' is part of the value.
            if (c == '+') {
                next_len = keyword_at(text, pos + 1, &next_key);
                if (next_len != 0) {
                    pos = pos + 1 + next_len;
                    next = true;
                    next_same_rdn = true;
                    break;
                }
            }
            if (c == ',' || is_blank(c)) {
                // Look past separators for the next keyword.
                std::size_t q = pos;
                bool comma = false;
                while (q < text.size() && (text[q] == ',' || is_blank(text[q]))) {
                    comma = comma || text[q] == ',';
                    ++q;
                }
                next_len = keyword_at(text, q, &next_key);
                if (next_len != 0) {
                    pos = q + next_len;
                    next = true;
                    break;
                }
                if (comma && q >= text.size()) {
                    pos = q;  // trailing comma
                    break;
                }
            }
            value += c;
            ++pos;
        }
        entries.push_back({key, trim(value), same_rdn});
        same_rdn = next_same_rdn;
        if (!next) {
            break;
        }
        key = std::move(next_key);
        value.clear();
    }
    for (const entry& e : entries) {
        const int nid = dn_attribute_nid(e.key);
        if (e.value.empty() || e.value.size() > 256) {
            return fail(error::bad_dn);
        }
        // countryName is a PrintableString. IOS's own example issuer-name has "C=pki" (3
        // letters), which OpenSSL's string table refuses: pass the type directly to bypass
        // the size table, but keep the PrintableString alphabet.
        int type = MBSTRING_UTF8;
        if (nid == NID_countryName) {
            if (!std::all_of(e.value.begin(), e.value.end(), [](char c) {
                    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == ' ' ||
                           c == '-' || c == '.';
                })) {
                return fail(error::bad_dn);
            }
            type = V_ASN1_PRINTABLESTRING;
        }
        const auto* data = reinterpret_cast<const unsigned char*>(e.value.data());
        const int len = static_cast<int>(e.value.size());
        // set -1: into the previous RDN (X509_NAME_add_entry(3)).
        if (X509_NAME_add_entry_by_NID(name.get(), nid, type, data, len, -1, e.same_rdn ? -1 : 0) !=
            1) {
            return fail(error::bad_dn);
        }
    }
    return name;
}

tl::expected<x509_ptr, std::error_code> make_self_signed_ca(EVP_PKEY* key,
                                                            std::string_view subject_dn,
                                                            const timers::validity& validity,
                                                            std::uint64_t serial,
                                                            timers::hash_algorithm hash) {
    auto name = parse_dn(subject_dn);
    if (!name) {
        return tl::unexpected(name.error());
    }
    return make_ca_impl(key, name->get(), validity, serial, hash);
}

tl::expected<x509_ptr, std::error_code> make_self_signed_ca(EVP_PKEY* key, const X509_NAME* subject,
                                                            const timers::validity& validity,
                                                            std::uint64_t serial,
                                                            timers::hash_algorithm hash) {
    return make_ca_impl(key, subject, validity, serial, hash);
}

bool is_ra_subject(const X509_NAME* name) {
    if (name == nullptr)
        return false;
    constexpr std::string_view ra_ou = "ioscs RA";
    int pos = -1;
    while ((pos = X509_NAME_get_index_by_NID(name, NID_organizationalUnitName, pos)) >= 0) {
        const ASN1_STRING* v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, pos));
        unsigned char* utf8 = nullptr;
        const int n = ASN1_STRING_to_UTF8(&utf8, v);
        if (n < 0)
            continue;
        const std::string_view text{reinterpret_cast<const char*>(utf8),
                                    static_cast<std::size_t>(n)};
        const bool match = text.size() == ra_ou.size() &&
                           std::equal(text.begin(), text.end(), ra_ou.begin(), [](char a, char b) {
                               return std::tolower(static_cast<unsigned char>(a)) ==
                                      std::tolower(static_cast<unsigned char>(b));
                           });
        OPENSSL_free(utf8);
        if (match)
            return true;
    }
    return false;
}

tl::expected<x509_ptr, std::error_code> make_shadow_ca(EVP_PKEY* new_key, const X509* current,
                                                       const timers::validity& validity,
                                                       std::uint64_t serial,
                                                       timers::hash_algorithm hash) {
    // ios-pki-model.md §1 rule 3: same subject, new key pair.
    return make_ca_impl(new_key, X509_get_subject_name(current), validity, serial, hash);
}

namespace {

// The issued certificate's SubjectPublicKeyInfo is the CSR's, copied as parsed (algorithm with
// its parameters, and the key's BIT STRING). Issue 12 §3: X509_set_pubkey runs an OSSL_ENCODER
// for a provider key and then d2i_X509_PUBKEY, whose OSSL_DECODER_CTX_new_for_pkey is the
// costly part of OpenSSL 3.0 (x_pubkey.c X509_PUBKEY_set; measured 325 us per call on this
// machine against 1.3 us for the copy). The CSR was parsed (and its self-signature verified)
// with this SPKI, so the bytes are the ones its key was decoded from.
bool copy_public_key(X509* cert, X509_PUBKEY* from) {
    ASN1_OBJECT* key_oid = nullptr;
    const unsigned char* key_bits = nullptr;
    int key_len = 0;
    X509_ALGOR* from_alg = nullptr;
    X509_PUBKEY* to = X509_get_X509_PUBKEY(cert);
    if (from == nullptr || to == nullptr ||
        X509_PUBKEY_get0_param(&key_oid, &key_bits, &key_len, &from_alg, from) != 1 ||
        key_oid == nullptr || from_alg == nullptr || key_bits == nullptr || key_len <= 0) {
        return false;
    }
    auto* bits =
        static_cast<unsigned char*>(OPENSSL_memdup(key_bits, static_cast<size_t>(key_len)));
    ASN1_OBJECT* oid = OBJ_dup(key_oid);
    if (bits == nullptr || oid == nullptr ||
        X509_PUBKEY_set0_param(to, oid, V_ASN1_UNDEF, nullptr, bits, key_len) != 1) {
        OPENSSL_free(bits);
        ASN1_OBJECT_free(oid);
        return false;
    }
    X509_ALGOR* to_alg = nullptr;
    X509_PUBKEY_get0_param(nullptr, nullptr, nullptr, &to_alg, to);
    // The parameters too (NULL for rsaEncryption, the curve for id-ecPublicKey).
    return to_alg != nullptr && X509_ALGOR_copy(to_alg, from_alg) == 1;
}

}  // namespace

tl::expected<x509_ptr, std::error_code> issue_certificate(const X509_REQ* csr_in, X509* ca_cert,
                                                          EVP_PKEY* ca_key,
                                                          const issue_options& options) {
    // OpenSSL 3.0's X509_REQ getters take non-const pointers but do not modify.
    auto* csr = const_cast<X509_REQ*>(csr_in);
    const EVP_MD* md = digest_for(options.hash);
    if (csr == nullptr || ca_cert == nullptr || ca_key == nullptr || md == nullptr) {
        return fail(md == nullptr ? error::unsupported_algorithm : error::bad_key);
    }
    EVP_PKEY* pub = X509_REQ_get0_pubkey(csr);
    if (pub == nullptr) {
        return fail(error::bad_message_data);
    }
    const X509_NAME* subject =
        options.subject != nullptr ? options.subject : X509_REQ_get_subject_name(csr);
    // Rule 2 guard: a certificate never outlives its issuer.
    const time_point ca_end = not_after(ca_cert);
    const time_point end = std::min(options.validity.not_after, ca_end);
    if (end <= options.validity.not_before || options.serial == 0) {
        return fail(error::internal);
    }
    x509_ptr cert{X509_new()};
    if (!cert || X509_set_version(cert.get(), 2) != 1 || !set_serial(cert.get(), options.serial) ||
        X509_set_subject_name(cert.get(), subject) != 1 ||
        X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert)) != 1 ||
        !set_validity(cert.get(), options.validity.not_before, end) ||
        !(options.attach_key ? X509_set_pubkey(cert.get(), pub) == 1
                             : copy_public_key(cert.get(), X509_REQ_get_X509_PUBKEY(csr)))) {
        return fail(error::internal);
    }
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, ca_cert, cert.get(), nullptr, nullptr, 0);
    if (!add_conf_ext(cert.get(), &ctx, NID_basic_constraints, "CA:FALSE") ||
        !add_conf_ext(cert.get(), &ctx, NID_key_usage, end_entity_key_usage(pub)) ||
        !add_conf_ext(cert.get(), &ctx, NID_subject_key_identifier, "hash") ||
        !add_conf_ext(cert.get(), &ctx, NID_authority_key_identifier, "keyid")) {
        return fail(error::internal);
    }
    if (options.profile == cert_profile::end_entity && !options.eku.empty()) {
        std::string list;
        for (const auto& name : options.eku) {
            const char* oid_name = eku_name(name);
            if (oid_name == nullptr)
                return fail(error::internal);
            list.append(list.empty() ? "" : ",").append(oid_name);
        }
        if (!add_conf_ext(cert.get(), &ctx, NID_ext_key_usage, list.c_str()))
            return fail(error::internal);
    }
    const bool copy_eku = options.copy_requested_extensions && options.eku.empty();
    if (options.profile == cert_profile::end_entity && (options.copy_san || copy_eku)) {
        extension_stack_ptr requested{X509_REQ_get_extensions(csr)};
        ERR_clear_error();  // no extensionRequest is not an error
        const int count = requested ? sk_X509_EXTENSION_num(requested.get()) : 0;
        for (int i = 0; i < count; ++i) {
            X509_EXTENSION* ext = sk_X509_EXTENSION_value(requested.get(), i);
            const int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
            const bool wanted = (nid == NID_subject_alt_name && options.copy_san) ||
                                (nid == NID_ext_key_usage && copy_eku);
            if (wanted && X509_add_ext(cert.get(), ext, -1) != 1) {
                return fail(error::bad_message_data);
            }
        }
    }
    if (!options.cdp_url.empty() && !add_cdp(cert.get(), options.cdp_url)) {
        return fail(error::internal);
    }
    if ((!options.aia_ocsp_url.empty() || !options.aia_ca_issuers_url.empty()) &&
        !add_aia(cert.get(), options.aia_ocsp_url, options.aia_ca_issuers_url)) {
        return fail(error::internal);
    }
    if (X509_sign(cert.get(), ca_key, md) <= 0) {
        return fail(error::bad_key);
    }
    return cert;
}

tl::expected<x509_crl_ptr, std::error_code> make_crl(X509* ca_cert, EVP_PKEY* ca_key,
                                                     std::span<const revoked_entry> revoked,
                                                     time_point this_update, time_point next_update,
                                                     std::uint64_t crl_number,
                                                     timers::hash_algorithm hash) {
    const EVP_MD* md = digest_for(hash);
    if (ca_cert == nullptr || ca_key == nullptr || md == nullptr) {
        return fail(md == nullptr ? error::unsupported_algorithm : error::bad_key);
    }
    x509_crl_ptr crl{X509_CRL_new()};
    const asn1_time_ptr last = to_asn1_time(this_update);
    const asn1_time_ptr next = to_asn1_time(next_update);
    if (!crl || X509_CRL_set_version(crl.get(), 1) != 1 ||
        X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca_cert)) != 1 ||
        X509_CRL_set1_lastUpdate(crl.get(), last.get()) != 1 ||
        X509_CRL_set1_nextUpdate(crl.get(), next.get()) != 1) {
        return fail(error::internal);
    }
    for (const revoked_entry& r : revoked) {
        X509_REVOKED* entry = X509_REVOKED_new();
        asn1_integer_ptr serial{ASN1_INTEGER_new()};
        const asn1_time_ptr when = to_asn1_time(r.revoked_at);
        if (entry == nullptr || !serial || ASN1_INTEGER_set_uint64(serial.get(), r.serial) != 1 ||
            X509_REVOKED_set_serialNumber(entry, serial.get()) != 1 ||
            X509_REVOKED_set_revocationDate(entry, when.get()) != 1) {
            X509_REVOKED_free(entry);
            return fail(error::internal);
        }
        if (r.reason) {
            // RFC 5280 §5.3.1: the entry's reasonCode, the same code OCSP answers with.
            asn1_enumerated_ptr code{ASN1_ENUMERATED_new()};
            if (!code || ASN1_ENUMERATED_set(code.get(), *r.reason) != 1 ||
                X509_REVOKED_add1_ext_i2d(entry, NID_crl_reason, code.get(), 0, 0) != 1) {
                X509_REVOKED_free(entry);
                return fail(error::internal);
            }
        }
        if (X509_CRL_add0_revoked(crl.get(), entry) != 1) {
            X509_REVOKED_free(entry);
            return fail(error::internal);
        }
    }
    asn1_integer_ptr number{ASN1_INTEGER_new()};
    if (!number || ASN1_INTEGER_set_uint64(number.get(), crl_number) != 1 ||
        X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, 0) != 1) {
        return fail(error::internal);
    }
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, ca_cert, nullptr, nullptr, crl.get(), 0);
    x509_extension_ptr aki{
        X509V3_EXT_conf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always")};
    if (!aki || X509_CRL_add_ext(crl.get(), aki.get(), -1) != 1 || X509_CRL_sort(crl.get()) != 1) {
        return fail(error::internal);
    }
    if (X509_CRL_sign(crl.get(), ca_key, md) <= 0) {
        return fail(error::bad_key);
    }
    return crl;
}

namespace {
// RFC 5280 §5.3.1 (value 7 is unused; 0 unspecified and 8 removeFromCRL are not offered).
constexpr std::pair<std::string_view, int> crl_reasons[] = {
    {"keyCompromise", 1},      {"cACompromise", 2},         {"affiliationChanged", 3},
    {"superseded", 4},         {"cessationOfOperation", 5}, {"certificateHold", 6},
    {"privilegeWithdrawn", 9}, {"aACompromise", 10},
};
}  // namespace

std::optional<int> crl_reason_from_name(std::string_view name) {
    for (const auto& [n, code] : crl_reasons) {
        if (n.size() == name.size() &&
            std::equal(n.begin(), n.end(), name.begin(), [](char a, char b) {
                return std::tolower(static_cast<unsigned char>(a)) ==
                       std::tolower(static_cast<unsigned char>(b));
            }))
            return code;
    }
    return std::nullopt;
}

std::string_view crl_reason_names() {
    return "keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, "
           "certificateHold, privilegeWithdrawn, aACompromise";
}

std::string_view crl_reason_name(int code) {
    for (const auto& [n, c] : crl_reasons) {
        if (c == code)
            return n;
    }
    return code == 0 ? "unspecified" : code == 8 ? "removeFromCRL" : "?";
}

bool crl_lists(const X509_CRL* crl, std::uint64_t serial) {
    asn1_integer_ptr s{ASN1_INTEGER_new()};
    if (!s || ASN1_INTEGER_set_uint64(s.get(), serial) != 1) {
        return false;
    }
    X509_REVOKED* entry = nullptr;
    // X509_CRL_get0_by_serial may sort the CRL's internal cache; it does not change the encoding.
    return X509_CRL_get0_by_serial(const_cast<X509_CRL*>(crl), &entry, s.get()) == 1;
}

std::string encrypt_private_key_pem(const EVP_PKEY* key, std::string_view passphrase) {
    // PKCS#8 v2 (PBES2: PBKDF2-HMAC-SHA256 + AES-256-CBC) with a current work factor, not
    // OpenSSL's 2,048 iterations (issue 13 §4, key_protection.hpp).
    return encrypt_private_key_pem_at_work_factor(key, passphrase);
}

tl::expected<evp_pkey_ptr, std::error_code> decrypt_private_key_pem(std::string_view pem,
                                                                    std::string_view passphrase) {
    if (pem.size() > static_cast<std::size_t>(INT_MAX)) {
        return fail(error::bad_key);
    }
    bio_ptr bio{BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))};
    // The passphrase goes through the callback (never a prompt).
    auto callback = [](char* buf, int size, int, void* user) -> int {
        const auto* pass = static_cast<const std::string_view*>(user);
        if (pass->empty() || pass->size() > static_cast<std::size_t>(size)) {
            return 0;
        }
        std::memcpy(buf, pass->data(), pass->size());
        return static_cast<int>(pass->size());
    };
    evp_pkey_ptr key{bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, callback,
                                                   const_cast<std::string_view*>(&passphrase))
                         : nullptr};
    if (!key) {
        const bool encrypted = pem.find("ENCRYPTED") != std::string_view::npos;
        return fail(encrypted ? error::wrong_passphrase : error::bad_key);
    }
    return key;
}

x509_ptr make_self_signed_signer(EVP_PKEY* key, std::string_view subject_dn,
                                 const timers::validity& validity, int digest_nid) {
    auto name = parse_dn(subject_dn);
    if (!name) {
        throw std::invalid_argument(fmt::format("bad DN \"{}\"", subject_dn));
    }
    const EVP_MD* md = digest_by_nid(digest_nid);
    x509_ptr cert{X509_new()};
    asn1_integer_ptr serial{ASN1_INTEGER_new()};
    const asn1_time_ptr nb = to_asn1_time(validity.not_before);
    const asn1_time_ptr na = to_asn1_time(validity.not_after);
    if (md == nullptr || !cert || !serial || ASN1_INTEGER_set(serial.get(), 1) != 1 ||
        X509_set_version(cert.get(), 2) != 1 ||
        X509_set_serialNumber(cert.get(), serial.get()) != 1 ||
        X509_set_subject_name(cert.get(), name->get()) != 1 ||
        X509_set_issuer_name(cert.get(), name->get()) != 1 ||
        X509_set1_notBefore(cert.get(), nb.get()) != 1 ||
        X509_set1_notAfter(cert.get(), na.get()) != 1 || X509_set_pubkey(cert.get(), key) != 1) {
        throw_openssl("make_self_signed_signer");
    }
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
    // An EC signer is reached by ECDH key agreement, an RSA one by key transport.
    x509_extension_ptr ku{X509V3_EXT_conf_nid(nullptr, &ctx, NID_key_usage,
                                              is_ec_key(key)
                                                  ? "critical,digitalSignature,keyAgreement"
                                                  : "critical,digitalSignature,keyEncipherment")};
    if (!ku || X509_add_ext(cert.get(), ku.get(), -1) != 1 || X509_sign(cert.get(), key, md) <= 0) {
        throw_openssl("make_self_signed_signer");
    }
    return cert;
}

x509_req_ptr make_csr(EVP_PKEY* key, std::string_view subject_dn, const csr_options& options) {
    auto name = parse_dn(subject_dn);
    if (!name) {
        throw std::invalid_argument(fmt::format("bad DN \"{}\"", subject_dn));
    }
    const EVP_MD* md = digest_by_nid(options.digest_nid);
    x509_req_ptr req{X509_REQ_new()};
    if (md == nullptr || !req || X509_REQ_set_version(req.get(), 0) != 1 ||
        X509_REQ_set_subject_name(req.get(), name->get()) != 1 ||
        X509_REQ_set_pubkey(req.get(), key) != 1) {
        throw_openssl("make_csr");
    }
    if (options.challenge_password) {
        const std::string& c = *options.challenge_password;
        const int type = options.challenge_utf8 ? V_ASN1_UTF8STRING : V_ASN1_PRINTABLESTRING;
        if (X509_REQ_add1_attr_by_NID(req.get(), NID_pkcs9_challengePassword, type,
                                      reinterpret_cast<const unsigned char*>(c.data()),
                                      static_cast<int>(c.size())) != 1) {
            throw_openssl("challengePassword");
        }
    }
    if (!options.dns_names.empty() || !options.ip_addresses.empty()) {
        std::string san;
        for (const std::string& d : options.dns_names) {
            san.append(san.empty() ? "" : ",").append("DNS:").append(d);
        }
        for (const std::string& ip : options.ip_addresses) {
            san.append(san.empty() ? "" : ",").append("IP:").append(ip);
        }
        X509V3_CTX ctx;
        X509V3_set_ctx(&ctx, nullptr, nullptr, req.get(), nullptr, 0);
        x509_extension_ptr ext{
            X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str())};
        STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
        const bool ok = ext && exts != nullptr && sk_X509_EXTENSION_push(exts, ext.get()) > 0 &&
                        X509_REQ_add_extensions(req.get(), exts) == 1;
        sk_X509_EXTENSION_free(exts);  // the extension itself is owned by `ext`
        if (!ok) {
            throw_openssl("subjectAltName");
        }
    }
    if (!options.extended_key_usages.empty()) {
        std::string list;
        for (const std::string& e : options.extended_key_usages)
            list.append(list.empty() ? "" : ",").append(e);
        // Replaces the extensionRequest with SAN + EKU when both are asked for.
        STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req.get());
        if (exts == nullptr)
            exts = sk_X509_EXTENSION_new_null();
        X509V3_CTX ctx;
        X509V3_set_ctx(&ctx, nullptr, nullptr, req.get(), nullptr, 0);
        X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_ext_key_usage, list.c_str());
        const int attr = X509_REQ_get_attr_by_NID(req.get(), NID_ext_req, -1);
        if (attr >= 0)
            X509_ATTRIBUTE_free(X509_REQ_delete_attr(req.get(), attr));
        const bool ok = ext != nullptr && exts != nullptr &&
                        sk_X509_EXTENSION_push(exts, ext) > 0 &&
                        X509_REQ_add_extensions(req.get(), exts) == 1;
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        if (!ok)
            throw_openssl("extendedKeyUsage");
    }
    if (X509_REQ_sign(req.get(), key, md) <= 0) {
        throw_openssl("X509_REQ_sign");
    }
    return req;
}

}  // namespace pkisim::scep
