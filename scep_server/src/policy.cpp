#include "pkisim/scep/policy.hpp"

#include <array>
#include <charconv>

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

namespace pkisim::scep {

namespace {

std::array<unsigned char, 32> sha256_of(std::string_view prefix, std::string_view text) {
    std::array<unsigned char, 32> md{};
    unsigned int n = 0;
    evp_md_ctx_ptr ctx{EVP_MD_CTX_new()};
    if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1 ||
        EVP_DigestUpdate(ctx.get(), prefix.data(), prefix.size()) != 1 ||
        EVP_DigestUpdate(ctx.get(), text.data(), text.size()) != 1 ||
        EVP_DigestFinal_ex(ctx.get(), md.data(), &n) != 1) {
        throw std::runtime_error("SHA-256: " + drain_openssl_errors());
    }
    return md;
}

// DER of the subjectAltName extension value in `exts`, empty when there is none.
bytes san_der(const STACK_OF(X509_EXTENSION) * exts) {
    const int i = X509v3_get_ext_by_NID(exts, NID_subject_alt_name, -1);
    if (i < 0)
        return {};
    const ASN1_OCTET_STRING* v = X509_EXTENSION_get_data(X509v3_get_ext(exts, i));
    const auto* p = ASN1_STRING_get0_data(v);
    return bytes(p, p + ASN1_STRING_length(v));
}

}  // namespace

bool challenge_matches(std::string_view presented, std::string_view configured) {
    // Compare digests: equal length by construction, CRYPTO_memcmp takes the same time for
    // every content (issue 13 §4).
    const auto a = sha256_of("pkisim-challenge:", presented);
    const auto b = sha256_of("pkisim-challenge:", configured);
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string one_time_password_digest(std::string_view password) {
    const auto md = sha256_of("pkisim-otp:", password);
    return to_hex(byte_view{md.data(), md.size()});
}

tl::expected<challenge_outcome, policy_refusal> check_challenge(
    const std::optional<std::string>& presented, const std::optional<std::string>& configured,
    timers::grant_mode mode, bool exempt, store& db, time_point now) {
    if (exempt) {
        // Not asked, but a matching static challenge still authorises what a first enrollment
        // may do (a renewal that changes the subject, check_renewal). One-time passwords are
        // not consumed by renewals.
        if (presented && configured && challenge_matches(*presented, *configured))
            return challenge_outcome::static_password;
        return challenge_outcome::not_asked;
    }
    if (!presented) {
        if (configured)
            return tl::unexpected(
                policy_refusal{fail_info::bad_request, "challenge password required"});
        return challenge_outcome::none_needed;
    }
    if (configured && challenge_matches(*presented, *configured))
        return challenge_outcome::static_password;
    if (db.consume_password(one_time_password_digest(*presented), now))
        return challenge_outcome::one_time_password;
    if (!configured && mode == timers::grant_mode::auto_grant)
        return challenge_outcome::ignored;
    return tl::unexpected(
        policy_refusal{fail_info::bad_request, "wrong or expired challenge password"});
}

admin_result generate_password(store& db, std::span<const std::string_view> args, time_point now) {
    std::uint64_t minutes = 60;  // IOS default: one hour
    if (args.size() > 1)
        return {false, "% usage: password generate [MINUTES]\n"};
    if (args.size() == 1) {
        const auto s = args[0];
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), minutes);
        if (ec != std::errc{} || p != s.data() + s.size() || minutes < 1 || minutes > 1440)
            return {false, "% minutes must be 1..1440\n"};
    }
    std::array<unsigned char, 8> raw{};
    if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1)
        return {false, "% no random bytes for a password\n"};
    std::string pw;
    for (auto b : raw)
        pw += fmt::format("{:02X}", b);
    // Only the digest is stored (issue 13 §4); the operator sees the password once.
    db.add_password(one_time_password_digest(pw), now + timers::minutes{minutes});
    return {true, fmt::format("% New password({}) is valid for {} minute(s)\n", pw, minutes)};
}

grant_decision decide_grant(timers::grant_mode mode, challenge_outcome challenge, bool ra_request) {
    if (challenge == challenge_outcome::one_time_password)
        return grant_decision::issue_now;  // IOS: a valid one-time password grants at once
    switch (mode) {
        case timers::grant_mode::auto_grant:
            return grant_decision::issue_now;
        case timers::grant_mode::none:
            return grant_decision::refuse;
        case timers::grant_mode::ra_auto:
            return ra_request ? grant_decision::issue_now : grant_decision::hold;
        case timers::grant_mode::manual:
            break;
    }
    return grant_decision::hold;
}

revocation_knowledge revocation_from_crl(X509* signer, X509_CRL* crl, X509* ca, time_point now) {
    using state = revocation_knowledge::state;
    if (crl == nullptr || ca == nullptr)
        return {state::unknown, "no CRL"};
    if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) != 0)
        return {state::unknown, "the CRL is not issued by the CA"};
    EVP_PKEY* ca_key = X509_get0_pubkey(ca);
    if (ca_key == nullptr || X509_CRL_verify(crl, ca_key) != 1) {
        ERR_clear_error();
        return {state::unknown, "the CRL's signature does not verify with the CA's key"};
    }
    std::string number;
    if (auto* n = static_cast<ASN1_INTEGER*>(
            X509_CRL_get_ext_d2i(crl, NID_crl_number, nullptr, nullptr))) {
        number = " number " + serial_hex(n);
        ASN1_INTEGER_free(n);
    }
    ERR_clear_error();
    const std::string source = fmt::format("the CA's CRL{}", number);
    X509_REVOKED* entry = nullptr;
    // X509_CRL_get0_by_cert matches issuer and serial (1: listed; 2: removeFromCRL).
    if (X509_CRL_get0_by_cert(crl, &entry, signer) == 1)
        return {state::revoked, source};
    const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl);
    if (next != nullptr) {
        if (auto t = from_asn1_time(next); t && *t < now)
            return {state::unknown, source + " is past its nextUpdate"};
    }
    return {state::good, source};
}

tl::expected<void, policy_refusal> check_renewal(X509* signer, const revocation_knowledge& rev,
                                                 const csr_request& csr, challenge_outcome c,
                                                 bool allow_identity_change) {
    if (rev.status == revocation_knowledge::state::revoked) {
        return tl::unexpected(policy_refusal{
            fail_info::bad_request,
            fmt::format("renewal signer rejected: certificate serial {} is revoked ({})",
                        serial_hex(signer), rev.source)});
    }
    if (rev.status == revocation_knowledge::state::unknown) {
        return tl::unexpected(policy_refusal{
            fail_info::bad_request,
            fmt::format("renewal signer rejected: the revocation of certificate serial {} "
                        "cannot be checked ({})",
                        serial_hex(signer), rev.source)});
    }
    // A challenge authorises a new identity as it would a first enrollment.
    const bool authorised =
        c == challenge_outcome::static_password || c == challenge_outcome::one_time_password;
    if (allow_identity_change || authorised)
        return {};
    X509_REQ* req = csr.csr.get();
    if (X509_NAME_cmp(X509_get_subject_name(signer), X509_REQ_get_subject_name(req)) != 0) {
        return tl::unexpected(policy_refusal{
            fail_info::bad_request, fmt::format("renewal may not change the subject ({} -> {})",
                                                subject_string(signer), csr.subject)});
    }
    STACK_OF(X509_EXTENSION)* requested = X509_REQ_get_extensions(req);
    ERR_clear_error();
    const bytes want = san_der(requested);
    sk_X509_EXTENSION_pop_free(requested, X509_EXTENSION_free);
    const bytes have = san_der(X509_get0_extensions(signer));
    if (want != have) {
        return tl::unexpected(
            policy_refusal{fail_info::bad_request, "renewal may not change the subjectAltName"});
    }
    return {};
}

tl::expected<void, policy_refusal> check_csr_key(const EVP_PKEY* key, unsigned min_rsa_bits) {
    if (key == nullptr)
        return tl::unexpected(policy_refusal{fail_info::bad_request, "CSR without a public key"});
    const int bits = EVP_PKEY_get_bits(key);
    if (EVP_PKEY_is_a(key, "RSA")) {
        if (bits < 0 || static_cast<unsigned>(bits) < min_rsa_bits) {
            return tl::unexpected(policy_refusal{
                fail_info::bad_request,
                fmt::format("RSA key of {} bits is below the minimum of {}", bits, min_rsa_bits)});
        }
        return {};
    }
    if (EVP_PKEY_is_a(key, "EC")) {
        std::array<char, 64> curve{};
        std::size_t len = 0;
        if (EVP_PKEY_get_utf8_string_param(key, "group", curve.data(), curve.size(), &len) != 1) {
            ERR_clear_error();
            return tl::unexpected(policy_refusal{fail_info::bad_request, "EC key without a curve"});
        }
        const std::string_view name{curve.data(), len};
        if (name == "prime256v1" || name == "P-256" || name == "secp384r1" || name == "P-384")
            return {};
        return tl::unexpected(policy_refusal{
            fail_info::bad_request,
            fmt::format("EC curve {} is not accepted (P-256 or P-384, RFC 5480)", name)});
    }
    return tl::unexpected(policy_refusal{
        fail_info::bad_request,
        fmt::format("{} keys are not accepted (RSA or EC P-256/P-384)",
                    EVP_PKEY_get0_type_name(key) ? EVP_PKEY_get0_type_name(key) : "unknown")});
}

}  // namespace pkisim::scep
