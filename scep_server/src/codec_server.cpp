// The server half of the SCEP codec: decode and check pkiMessages, build CertReps and the
// GetCACert / GetNextCACert / GetCACaps bodies, map errors to the wire (codec.hpp).
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

namespace {

std::optional<std::string> challenge_of(X509_REQ* req) {
    const int idx = X509_REQ_get_attr_by_NID(req, NID_pkcs9_challengePassword, -1);
    if (idx < 0) {
        return std::nullopt;
    }
    X509_ATTRIBUTE* attr = X509_REQ_get_attr(req, idx);
    ASN1_TYPE* t = attr != nullptr ? X509_ATTRIBUTE_get0_type(attr, 0) : nullptr;
    if (t == nullptr || t->type == V_ASN1_BOOLEAN || t->type == V_ASN1_OBJECT ||
        t->type == V_ASN1_NULL || t->type == V_ASN1_SEQUENCE || t->type == V_ASN1_SET) {
        return std::string{};  // present but unreadable: a wrong challenge, not a crash
    }
    unsigned char* utf8 = nullptr;
    // DirectoryString: PrintableString, UTF8String (certmonger with non-ASCII), BMPString...
    const int len = ASN1_STRING_to_UTF8(&utf8, t->value.asn1_string);
    if (len < 0) {
        ERR_clear_error();
        return std::string{};
    }
    std::string out(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(len));
    OPENSSL_free(utf8);
    return out;
}

tl::expected<message_data, std::error_code> parse_message_data(message_type type, byte_view der) {
    switch (type) {
        case message_type::pkcs_req:
        case message_type::renewal_req: {
            auto req = x509_req_from_der(der);
            if (!req) {
                return fail(error::bad_message_data);
            }
            EVP_PKEY* pub = X509_REQ_get0_pubkey(req->get());
            if (pub == nullptr) {
                return fail(error::bad_message_data);
            }
            // RFC 8894 §2.3 / scep-wire §1.5 step 4: proof of possession.
            if (X509_REQ_verify(req->get(), pub) != 1) {
                return fail(error::bad_csr_signature);
            }
            csr_request csr;
            csr.der.assign(der.begin(), der.end());
            csr.challenge_password = challenge_of(req->get());
            csr.subject = name_to_string(X509_REQ_get_subject_name(req->get()));
            csr.public_key = pub;
            csr.csr = std::move(*req);
            return message_data{std::move(csr)};
        }
        case message_type::cert_poll: {
            const auto body = sequence_body(der);
            if (!body) {
                return fail(error::bad_message_data);
            }
            const unsigned char* p = body->data();
            const unsigned char* end = body->data() + body->size();
            issuer_and_subject ias;
            ias.issuer.reset(d2i_X509_NAME(nullptr, &p, end - p));
            if (ias.issuer) {
                ias.subject.reset(d2i_X509_NAME(nullptr, &p, end - p));
            }
            if (!ias.issuer || !ias.subject || p != end) {
                return fail(error::bad_message_data);
            }
            return message_data{std::move(ias)};
        }
        case message_type::get_cert:
        case message_type::get_crl: {
            const unsigned char* p = der.data();
            std::unique_ptr<PKCS7_ISSUER_AND_SERIAL,
                            openssl_deleter<PKCS7_ISSUER_AND_SERIAL, PKCS7_ISSUER_AND_SERIAL_free>>
                ias{der.empty()
                        ? nullptr
                        : d2i_PKCS7_ISSUER_AND_SERIAL(nullptr, &p, static_cast<long>(der.size()))};
            if (!ias || p != der.data() + der.size() || ias->issuer == nullptr ||
                ias->serial == nullptr) {
                return fail(error::bad_message_data);
            }
            issuer_and_serial out;
            out.issuer = copy(ias->issuer);
            out.serial.reset(ASN1_INTEGER_dup(ias->serial));
            out.serial_hex = serial_hex(ias->serial);
            out.serial_u64 = serial_u64(ias->serial);
            return message_data{std::move(out)};
        }
        case message_type::cert_rep:
            break;
    }
    return fail(error::unknown_message_type);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
tl::expected<pki_request, decode_failure> decode_pki_message(byte_view der,
                                                             std::span<const decryption_key> keys,
                                                             const decode_options& options) {
    const scep_nids& n = nids();
    std::optional<reply_context> context;
    const auto failure = [&](error e, std::string text,
                             std::optional<fail_info> info = std::nullopt) {
        ERR_clear_error();
        const std::error_code ec = make_error_code(e);
        decode_failure f;
        f.info = info.value_or(fail_info_for(ec));
        f.code = ec;
        f.text = text.empty() ? ec.message() : std::move(text);
        if (context) {
            f.context = context->clone();
        }
        return tl::unexpected(std::move(f));
    };

    auto opened = open_signed(der, options.max_message_size);
    if (!opened) {
        return failure(static_cast<error>(opened.error().value()), {});
    }
    CMS_SignerInfo* si = opened->si;

    // Attributes needed for any reply (scep-wire §0.14).
    std::string transaction_id;
    bytes sender_nonce;
    const attr_state tid_state = string_attr(si, n.transaction_id, &transaction_id);
    const attr_state nonce_state = bytes_attr(si, n.sender_nonce, &sender_nonce);
    if (tid_state != attr_state::ok || nonce_state != attr_state::ok) {
        const bool absent = tid_state == attr_state::absent || nonce_state == attr_state::absent;
        return failure(absent ? error::missing_attribute : error::bad_attribute,
                       absent ? "transactionID or senderNonce missing"
                              : "transactionID or senderNonce has a wrong type");
    }
    // Nonce: RFC says 16 bytes; tolerate other sizes, but cap (Dogtag caps at 16).
    if (transaction_id.empty() || transaction_id.size() > options.max_transaction_id_size ||
        !is_printable(transaction_id)) {
        return failure(error::bad_attribute, "transactionID empty, too long or not printable");
    }
    if (sender_nonce.empty() || sender_nonce.size() > options.max_nonce_size) {
        return failure(error::bad_attribute,
                       fmt::format("senderNonce of {} bytes", sender_nonce.size()));
    }
    const bool digest_known = digest_by_nid(opened->digest_nid) != nullptr;
    const bool digest_legacy = is_legacy_algorithm(opened->digest_nid);
    context.emplace();
    context->transaction_id = transaction_id;
    context->sender_nonce = sender_nonce;
    context->signer = share(opened->signer.get());
    // The reply is signed with the client's digest (scep-wire §0.3), unless it is one we refuse.
    context->digest_nid =
        digest_known && (!digest_legacy || options.allow_legacy) ? opened->digest_nid : NID_sha256;

    if (!digest_known) {
        return failure(error::unsupported_algorithm,
                       fmt::format("unsupported digest {}", algorithm_name(opened->digest_nid)));
    }
    if (digest_legacy && !options.allow_legacy) {
        return failure(error::legacy_algorithm_disabled,
                       "MD5 is refused (RFC 8894 §2.9); start the server with --legacy-crypto "
                       "to accept it");
    }

    auto content = verify_signature(*opened);
    if (!content) {
        return failure(static_cast<error>(content.error().value()),
                       "pkiMessage signature or messageDigest does not verify");
    }

    std::string type_text;
    if (string_attr(si, n.message_type, &type_text) != attr_state::ok) {
        return failure(error::missing_attribute, "messageType missing or of a wrong type");
    }
    const std::optional<int> type_value = parse_small_int(type_text);
    message_type type{};
    switch (type_value.value_or(-1)) {
        case 17:
            type = message_type::renewal_req;
            break;
        case 19:
            type = message_type::pkcs_req;
            break;
        case 20:
            type = message_type::cert_poll;
            break;
        case 21:
            type = message_type::get_cert;
            break;
        case 22:
            type = message_type::get_crl;
            break;
        default:
            // 18 (UpdateReq) is unassigned in RFC 8894; 3 is a reply.
            return failure(error::unknown_message_type,
                           fmt::format("messageType \"{}\" is not a request this CA serves",
                                       is_printable(type_text) ? type_text : "?"));
    }

    pki_request req;
    req.type = type;
    req.transaction_id = std::move(transaction_id);
    req.sender_nonce = std::move(sender_nonce);
    req.signer = std::move(opened->signer);
    req.signer_is_self_signed = is_self_signed(req.signer.get());
    req.digest_nid = opened->digest_nid;
    for (x509_ptr& c : opened->certs) {
        if (X509_cmp(c.get(), req.signer.get()) != 0) {
            req.extra_certs.push_back(std::move(c));
        }
    }
    if (ASN1_TYPE* st = signed_attribute(si, NID_pkcs9_signingTime)) {
        if (st->type == V_ASN1_UTCTIME || st->type == V_ASN1_GENERALIZEDTIME) {
            if (auto t = from_asn1_time(st->value.utctime)) {
                req.signing_time = *t;
            }
        }
    }

    // The pkcsPKIEnvelope (RFC 8894 §3.2.2).
    const int cipher_nid = envelope_cipher_nid(*content);
    if (cipher_nid != NID_undef) {
        context->cipher_nid = cipher_nid;
        if (cipher_by_nid(cipher_nid) == nullptr) {
            return failure(
                error::unsupported_algorithm,
                fmt::format("unsupported content cipher {}", algorithm_name(cipher_nid)));
        }
        if (is_legacy_algorithm(cipher_nid) && !options.allow_legacy) {
            return failure(error::legacy_algorithm_disabled,
                           "single DES is refused (RFC 8894 §2.9); start the server with "
                           "--legacy-crypto to accept it");
        }
    }
    auto envelope = open_envelope(*content, keys);
    if (!envelope) {
        const auto e = static_cast<error>(envelope.error().value());
        if (e == error::decrypt_failed && cipher_nid == NID_des_cbc && !legacy_provider_loaded()) {
            return failure(error::legacy_algorithm_disabled,
                           "single DES needs the OpenSSL legacy provider (--legacy-crypto)");
        }
        return failure(e, e == error::not_for_us
                              ? "the envelope is not encrypted to any certificate of this CA/RA"
                              : std::string{});
    }
    req.cipher_nid = cipher_nid != NID_undef ? cipher_nid : 0;
    req.recipient_index = envelope->key_index;
    req.oaep = envelope->oaep;

    auto data = parse_message_data(type, envelope->content);
    if (!data) {
        return failure(static_cast<error>(data.error().value()),
                       fmt::format("{} messageData: {}", to_string(type), data.error().message()));
    }
    req.data = std::move(*data);
    return req;
}

tl::expected<void, std::error_code> verify_signer_chain(X509* signer,
                                                        std::span<X509* const> trusted,
                                                        time_point at) {
    x509_store_ptr store{X509_STORE_new()};
    x509_store_ctx_ptr ctx{X509_STORE_CTX_new()};
    if (!store || !ctx || signer == nullptr) {
        return fail(error::internal);
    }
    for (X509* c : trusted) {
        if (c != nullptr && X509_STORE_add_cert(store.get(), c) != 1) {
            return fail(error::internal);
        }
    }
    if (X509_STORE_CTX_init(ctx.get(), store.get(), signer, nullptr) != 1) {
        return fail(error::internal);
    }
    X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
    // scep-wire §0.6: purpose ANY, or a clientAuth-only EKU fails "unsuitable certificate purpose".
    X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_ANY);
    X509_VERIFY_PARAM_set_time(
        param, static_cast<time_t>(
                   std::chrono::floor<std::chrono::seconds>(at).time_since_epoch().count()));
    // An intermediate (RA-mode upstream) may be a trust anchor on its own.
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
    if (X509_verify_cert(ctx.get()) == 1) {
        return {};
    }
    const int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    if (err == X509_V_ERR_CERT_HAS_EXPIRED || err == X509_V_ERR_CERT_NOT_YET_VALID) {
        return fail(error::signer_expired);
    }
    return fail(error::signer_not_trusted);
}

// ---------------------------------------------------------------------------------------------
tl::expected<void, std::error_code> check_reply_envelope(X509* recipient, int cipher_nid) {
    static constexpr std::uint8_t probe[1] = {0};
    X509* r = recipient;
    auto env = build_envelope(std::span<X509* const>{&r, 1},
                              cipher_nid != 0 ? cipher_nid : NID_aes_128_cbc, false, probe);
    if (!env)
        return tl::unexpected(env.error());
    return {};
}

tl::expected<bytes, std::error_code> encode_cert_rep(const cert_rep_params& p) {
    scep_attributes attrs;
    attrs.type = message_type::cert_rep;
    attrs.transaction_id = p.transaction_id;
    attrs.sender_nonce = p.sender_nonce.empty() ? fresh_nonce() : p.sender_nonce;
    attrs.recipient_nonce = p.recipient_nonce;
    attrs.status = p.status;
    attrs.signing_time = p.signing_time;
    if (p.status == pki_status::failure) {
        attrs.failure = p.failure;
        attrs.fail_info_text = p.fail_info_text;
    }
    std::vector<X509*> outer;
    if (p.status == pki_status::success && p.issued_in_outer_certs && !p.issued.empty()) {
        outer.push_back(p.issued.front());
    }
    outer.insert(outer.end(), p.extra_certs.begin(), p.extra_certs.end());
    bytes content;
    if (p.status == pki_status::success) {
        if (p.recipient == nullptr || (p.issued.empty() && p.crls.empty())) {
            return fail(error::internal);
        }
        const bytes inner = degenerate_certs_only(p.issued, p.crls);
        X509* recipient = p.recipient;
        auto env = build_envelope(std::span<X509* const>{&recipient, 1},
                                  p.cipher_nid != 0 ? p.cipher_nid : NID_aes_128_cbc, false, inner);
        if (!env) {
            return tl::unexpected(env.error());
        }
        content = std::move(*env);
    }
    return build_signed(p.signer_cert, p.signer_key, p.digest_nid != 0 ? p.digest_nid : NID_sha256,
                        outer, attrs, content);
}

namespace {
cert_rep_params base_params(const reply_context& ctx, X509* signer_cert, EVP_PKEY* signer_key,
                            time_point signing_time) {
    cert_rep_params p;
    p.transaction_id = ctx.transaction_id;
    p.recipient_nonce = ctx.sender_nonce;
    p.recipient = ctx.signer.get();
    p.digest_nid = ctx.digest_nid != 0 ? ctx.digest_nid : NID_sha256;
    p.cipher_nid = ctx.cipher_nid != 0 ? ctx.cipher_nid : NID_aes_128_cbc;
    p.signer_cert = signer_cert;
    p.signer_key = signer_key;
    p.signing_time = signing_time;
    return p;
}
}  // namespace

cert_rep_params success_for(const reply_context& ctx, X509* signer_cert, EVP_PKEY* signer_key,
                            std::vector<X509*> issued, time_point signing_time) {
    cert_rep_params p = base_params(ctx, signer_cert, signer_key, signing_time);
    p.status = pki_status::success;
    p.issued = std::move(issued);
    return p;
}

cert_rep_params pending_for(const reply_context& ctx, X509* signer_cert, EVP_PKEY* signer_key,
                            time_point signing_time) {
    cert_rep_params p = base_params(ctx, signer_cert, signer_key, signing_time);
    p.status = pki_status::pending;
    return p;
}

cert_rep_params failure_for(const reply_context& ctx, X509* signer_cert, EVP_PKEY* signer_key,
                            fail_info info, std::string text, time_point signing_time) {
    cert_rep_params p = base_params(ctx, signer_cert, signer_key, signing_time);
    p.status = pki_status::failure;
    p.failure = info;
    p.fail_info_text = std::move(text);
    return p;
}

bytes degenerate_certs_only(std::span<X509* const> certs, std::span<X509_CRL* const> crls) {
    pkcs7_ptr p7{PKCS7_new()};
    if (!p7 || PKCS7_set_type(p7.get(), NID_pkcs7_signed) != 1) {
        throw_openssl("PKCS7_set_type");
    }
    // RFC 8894 §3.4: contentInfo of type data with the content omitted (`crl2pkcs7`).
    PKCS7* contents = p7->d.sign->contents;
    ASN1_OBJECT_free(contents->type);
    contents->type = OBJ_nid2obj(NID_pkcs7_data);
    for (X509* c : certs) {
        if (c != nullptr && PKCS7_add_certificate(p7.get(), c) != 1) {
            throw_openssl("PKCS7_add_certificate");
        }
    }
    for (X509_CRL* c : crls) {
        if (c != nullptr && PKCS7_add_crl(p7.get(), c) != 1) {
            throw_openssl("PKCS7_add_crl");
        }
    }
    return to_der(p7.get());
}

tl::expected<bytes, std::error_code> encode_get_next_ca_cert(std::span<X509* const> new_certs,
                                                             X509* signer_cert,
                                                             EVP_PKEY* signer_key, int digest_nid,
                                                             time_point signing_time) {
    if (new_certs.empty()) {
        return fail(error::internal);
    }
    const bytes inner = degenerate_certs_only(new_certs);
    scep_attributes attrs;
    attrs.signing_time = signing_time;
    // scep-wire §1.8: content per RFC 8894 §4.7.1 AND the outer certificates (sscep, jscep).
    return build_signed(signer_cert, signer_key, digest_nid, new_certs, attrs, inner);
}

std::string get_ca_caps_body(bool next_ca_available) {
    // scep-wire §1.7: individual keywords as well as SCEPStandard (jscep), SHA-384 and DES3 for
    // clients that index the list; GetNextCACert only while a shadow CA exists.
    std::string body = "AES\nDES3\n";
    if (next_ca_available) {
        body += "GetNextCACert\n";
    }
    body += "POSTPKIOperation\nRenewal\nSHA-1\nSHA-256\nSHA-384\nSHA-512\nSCEPStandard\n";
    return body;
}

// ---------------------------------------------------------------------------------------------
fail_info fail_info_for(std::error_code ec) noexcept {
    if (ec.category() != scep_category()) {
        return fail_info::bad_request;
    }
    switch (static_cast<error>(ec.value())) {
        case error::bad_signature:
            return fail_info::bad_message_check;
        case error::unsupported_algorithm:
        case error::legacy_algorithm_disabled:
            return fail_info::bad_alg;
        case error::bad_time:
            return fail_info::bad_time;
        case error::unknown_certificate:
            return fail_info::bad_cert_id;
        default:
            return fail_info::bad_request;
    }
}

wire_answer to_wire(std::error_code ec, bool have_reply_context) {
    wire_answer w;
    if (!ec) {
        return w;
    }
    const bool internal =
        ec.category() != scep_category() || static_cast<error>(ec.value()) == error::internal;
    if (have_reply_context) {
        // RFC 8894 / micromdm layering: a SCEP problem is a CertRep FAILURE, never an HTTP 500.
        w.failure = fail_info_for(ec);
        return w;
    }
    if (ec.category() == scep_category() &&
        static_cast<error>(ec.value()) == error::message_too_large) {
        w.http_status = 413;
        return w;
    }
    w.http_status = internal ? 500 : 400;
    return w;
}

}  // namespace pkisim::scep
