// The client half of the SCEP codec: build pkiMessages, read CertReps, GetCACert and
// GetNextCACert answers (codec.hpp). Used by tests, the RA's upstream calls and `pkisim client`.
#include "codec_internal.hpp"
#include "pkisim/scep/codec.hpp"

#include <algorithm>
#include <array>
#include <climits>
#include <stdexcept>

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "pkisim/scep/crypto.hpp"

namespace pkisim::scep {

using namespace codec_detail;

// ---------------------------------------------------------------------------------------------
// Client side.
tl::expected<bytes, std::error_code> encode_pki_request(const request_params& p) {
    if (p.transaction_id.empty()) {
        return fail(error::missing_attribute);
    }
    auto env = build_envelope(p.recipients, p.cipher_nid, p.oaep, p.message_data);
    if (!env) {
        return tl::unexpected(env.error());
    }
    scep_attributes attrs;
    attrs.type = p.type;
    attrs.transaction_id = p.transaction_id;
    attrs.sender_nonce = p.sender_nonce.empty() ? fresh_nonce() : p.sender_nonce;
    attrs.signing_time = p.signing_time;
    return build_signed(p.signer_cert, p.signer_key, p.digest_nid, {}, attrs, *env);
}

bytes encode_issuer_and_subject(const X509_NAME* issuer, const X509_NAME* subject) {
    const bytes a = to_der(issuer);
    const bytes b = to_der(subject);
    bytes out;
    out.reserve(a.size() + b.size() + 8);
    append_header(out, 0x30, a.size() + b.size());
    out.insert(out.end(), a.begin(), a.end());
    out.insert(out.end(), b.begin(), b.end());
    return out;
}

bytes encode_issuer_and_serial(const X509_NAME* issuer, const ASN1_INTEGER* serial) {
    const bytes a = to_der(issuer);
    const int len = i2d_ASN1_INTEGER(serial, nullptr);
    if (len <= 0) {
        throw_openssl("i2d_ASN1_INTEGER");
    }
    bytes s(static_cast<std::size_t>(len));
    unsigned char* p = s.data();
    i2d_ASN1_INTEGER(serial, &p);
    bytes out;
    append_header(out, 0x30, a.size() + s.size());
    out.insert(out.end(), a.begin(), a.end());
    out.insert(out.end(), s.begin(), s.end());
    return out;
}

bytes encode_issuer_and_serial(const X509* cert) {
    return encode_issuer_and_serial(X509_get_issuer_name(cert), X509_get0_serialNumber(cert));
}

std::string transaction_id_for(const EVP_PKEY* key) {
    unsigned char* der = nullptr;
    const int len = i2d_PUBKEY(key, &der);
    if (len <= 0) {
        throw_openssl("i2d_PUBKEY");
    }
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned int md_len = 0;
    const int ok =
        EVP_Digest(der, static_cast<std::size_t>(len), md.data(), &md_len, EVP_sha1(), nullptr);
    OPENSSL_free(der);
    if (ok != 1) {
        throw_openssl("EVP_Digest");
    }
    std::string hex = to_hex(byte_view{md.data(), md_len});
    std::transform(hex.begin(), hex.end(), hex.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return hex;
}
tl::expected<cert_rep, std::error_code> decode_cert_rep(byte_view der, X509* recipient_cert,
                                                        EVP_PKEY* recipient_key,
                                                        std::span<X509* const> trusted_signers,
                                                        const decode_options& options) {
    const scep_nids& n = nids();
    auto opened = open_signed(der, options.max_message_size);
    if (!opened) {
        return tl::unexpected(opened.error());
    }
    if (!trusted_signers.empty() && !is_one_of(opened->signer.get(), trusted_signers)) {
        return fail(error::signer_not_trusted);
    }
    auto content = verify_signature(*opened);
    if (!content) {
        return tl::unexpected(content.error());
    }
    CMS_SignerInfo* si = opened->si;
    cert_rep rep;
    rep.digest_nid = opened->digest_nid;
    std::string text;
    if (string_attr(si, n.message_type, &text) != attr_state::ok ||
        parse_small_int(text) != static_cast<int>(message_type::cert_rep)) {
        return fail(error::unknown_message_type);
    }
    if (string_attr(si, n.pki_status, &text) != attr_state::ok) {
        return fail(error::missing_attribute);
    }
    switch (parse_small_int(text).value_or(-1)) {
        case 0:
            rep.status = pki_status::success;
            break;
        case 2:
            rep.status = pki_status::failure;
            break;
        case 3:
            rep.status = pki_status::pending;
            break;
        default:
            return fail(error::bad_attribute);
    }
    if (string_attr(si, n.transaction_id, &rep.transaction_id) != attr_state::ok ||
        bytes_attr(si, n.sender_nonce, &rep.sender_nonce) != attr_state::ok ||
        bytes_attr(si, n.recipient_nonce, &rep.recipient_nonce) != attr_state::ok) {
        return fail(error::missing_attribute);
    }
    if (rep.status == pki_status::failure) {
        if (string_attr(si, n.fail_info, &text) != attr_state::ok) {
            return fail(error::missing_attribute);
        }
        const int f = parse_small_int(text).value_or(-1);
        if (f < 0 || f > 4) {
            return fail(error::bad_attribute);
        }
        rep.failure = static_cast<fail_info>(f);
        string_attr(si, n.fail_info_text, &rep.fail_info_text);
    }
    rep.signer = std::move(opened->signer);
    rep.outer_certs = std::move(opened->certs);
    if (rep.status == pki_status::success && !options.status_only) {
        rep.cipher_nid = envelope_cipher_nid(*content);
        const decryption_key key{recipient_cert, recipient_key};
        auto env = open_envelope(*content, std::span<const decryption_key>{&key, 1});
        if (!env) {
            return tl::unexpected(env.error());
        }
        auto bundle = read_degenerate(env->content);
        if (!bundle) {
            return fail(error::bad_message_data);
        }
        rep.certs = std::move(bundle->certs);
        rep.crls = std::move(bundle->crls);
    }
    return rep;
}

tl::expected<certs_bundle, std::error_code> parse_certs_only(byte_view der) {
    auto bundle = read_degenerate(der);
    if (bundle) {
        return bundle;
    }
    auto cert = x509_from_der(der);
    if (!cert) {
        return tl::unexpected(bundle.error());
    }
    certs_bundle out;
    out.certs.push_back(std::move(*cert));
    return out;
}

tl::expected<next_ca_response, std::error_code> parse_get_next_ca_cert(
    byte_view der, std::span<X509* const> trusted_signers) {
    auto opened = open_signed(der, 1024 * 1024);
    if (!opened) {
        return tl::unexpected(opened.error());
    }
    if (!trusted_signers.empty() && !is_one_of(opened->signer.get(), trusted_signers)) {
        return fail(error::signer_not_trusted);
    }
    auto content = verify_signature(*opened);
    if (!content) {
        return tl::unexpected(content.error());
    }
    next_ca_response out;
    if (!content->empty()) {
        auto bundle = read_degenerate(*content);
        if (!bundle) {
            return fail(error::bad_message_data);
        }
        out.content_certs = std::move(bundle->certs);
    }
    for (x509_ptr& c : opened->certs) {
        if (X509_cmp(c.get(), opened->signer.get()) != 0) {
            out.outer_certs.push_back(std::move(c));
        }
    }
    out.signer = std::move(opened->signer);
    return out;
}

}  // namespace pkisim::scep
