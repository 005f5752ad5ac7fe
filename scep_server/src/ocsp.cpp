#include "ocsp.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "engine_text.hpp"
#include "pkisim/scep/crypto.hpp"

namespace pkisim::scep {

namespace {

bytes response_der(OCSP_RESPONSE* r) {
    unsigned char* out = nullptr;
    const int n = i2d_OCSP_RESPONSE(r, &out);
    if (n <= 0)
        return {};
    bytes der(out, out + n);
    OPENSSL_free(out);
    return der;
}

// An OCSPResponse without responseBytes (every status but successful).
bytes status_only_response(int status) {
    ocsp_response_ptr r{OCSP_response_create(status, nullptr)};
    return r ? response_der(r.get()) : bytes{};
}

http_answer ocsp_answer(const bytes& der, std::string detail) {
    // RFC 6960 Appendix A.2: application/ocsp-response, also for the error statuses.
    return {200, "application/ocsp-response", detail::as_string(der), false, std::move(detail)};
}

std::string meta_key(std::string_view what, int generation) {
    return fmt::format("ocsp_responder_{}_{}", what, generation);
}

// A responder certificate for `ca` (RFC 6960 §4.2.2.2): CA:FALSE, keyUsage digitalSignature,
// extendedKeyUsage id-kp-OCSPSigning, id-pkix-ocsp-nocheck (clients need not check its own
// status), SKI/AKI.
tl::expected<x509_ptr, std::string> make_responder_cert(X509* ca, EVP_PKEY* ca_key, EVP_PKEY* key,
                                                        std::uint64_t serial, time_point from,
                                                        time_point to,
                                                        std::string_view server_name) {
    x509_ptr cert{X509_new()};
    x509_name_ptr subject{X509_NAME_new()};
    asn1_integer_ptr sn{ASN1_INTEGER_new()};
    const auto cn = fmt::format("{} OCSP responder", server_name);
    const asn1_time_ptr nb = to_asn1_time(from);
    const asn1_time_ptr na = to_asn1_time(to);
    if (!cert || !subject || !sn || ASN1_INTEGER_set_uint64(sn.get(), serial) != 1 ||
        X509_NAME_add_entry_by_txt(subject.get(), "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(cn.data()),
                                   static_cast<int>(cn.size()), -1, 0) != 1 ||
        X509_set_version(cert.get(), 2) != 1 || X509_set_serialNumber(cert.get(), sn.get()) != 1 ||
        X509_set_subject_name(cert.get(), subject.get()) != 1 ||
        X509_set_issuer_name(cert.get(), X509_get_subject_name(ca)) != 1 ||
        X509_set1_notBefore(cert.get(), nb.get()) != 1 ||
        X509_set1_notAfter(cert.get(), na.get()) != 1 || X509_set_pubkey(cert.get(), key) != 1) {
        return tl::unexpected(drain_openssl_errors());
    }
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, ca, cert.get(), nullptr, nullptr, 0);
    // Our literals only (openssl.cnf syntax), never user text.
    const std::pair<int, const char*> exts[] = {
        {NID_basic_constraints, "critical,CA:FALSE"}, {NID_key_usage, "critical,digitalSignature"},
        {NID_ext_key_usage, "OCSPSigning"},           {NID_id_pkix_OCSP_noCheck, "ignored"},
        {NID_subject_key_identifier, "hash"},         {NID_authority_key_identifier, "keyid"},
    };
    for (const auto& [nid, value] : exts) {
        x509_extension_ptr ext{X509V3_EXT_conf_nid(nullptr, &ctx, nid, value)};
        if (!ext || X509_add_ext(cert.get(), ext.get(), -1) != 1)
            return tl::unexpected(drain_openssl_errors());
    }
    if (X509_sign(cert.get(), ca_key, EVP_sha256()) <= 0)
        return tl::unexpected(drain_openssl_errors());
    return cert;
}

}  // namespace

bytes ocsp_malformed_response() {
    return status_only_response(OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
}

ocsp_responder::ocsp_responder(store& db, const engine_options& options,
                               std::function<EVP_PKEY*(int)> loaded_key)
    : db_(db), options_(options), loaded_key_(std::move(loaded_key)) {}

ocsp_responder::~ocsp_responder() = default;

void ocsp_responder::refresh_generations() {
    // Re-read on every request: a rollover adds a generation, a switchover changes states. The
    // parsed certificates and decrypted keys are kept.
    for (auto& g : db_.ca_generations()) {
        if (g.state == ca_state::cancelled) {
            generations_.erase(g.id);
            continue;
        }
        auto it = generations_.find(g.id);
        if (it == generations_.end()) {
            auto cert = x509_from_der(g.cert_der);
            if (!cert)
                continue;  // the CA engine refuses to start on a corrupt one
            generation fresh;
            fresh.id = g.id;
            fresh.cert = std::move(*cert);
            fresh.key_pem = std::move(g.key_pem);
            it = generations_.emplace(g.id, std::move(fresh)).first;
        }
        it->second.state = g.state;
    }
}

EVP_PKEY* ocsp_responder::ca_key(generation& g) {
    // The engine's own copy first: decrypting costs a PBKDF2 run (key_protection.hpp).
    if (loaded_key_) {
        if (EVP_PKEY* k = loaded_key_(g.id))
            return k;
    }
    if (!g.key)
        g.key = detail::load_stored_key(g.key_pem, options_, "CA");
    return g.key.get();
}

void ocsp_responder::ensure_responder(generation& g, time_point now) {
    if (g.responder_cert)
        return;
    const auto cert_key = meta_key("cert", g.id);
    const auto key_key = meta_key("key", g.id);
    if (auto pem = db_.meta(cert_key)) {
        auto cert = x509_from_pem(*pem);
        auto key_pem = db_.meta(key_key);
        if (cert && key_pem) {
            g.responder_cert = std::move(*cert);
            g.responder_key = detail::load_stored_key(*key_pem, options_, "OCSP responder");
            return;
        }
    }
    // EC P-256: cheap to make, and every OCSP client verifies ECDSA.
    evp_pkey_ptr key = generate_ec_key("P-256");
    EVP_PKEY* issuer_key = ca_key(g);
    const time_point from = std::max(now, not_before(g.cert.get()));
    const time_point to = not_after(g.cert.get());
    x509_ptr cert;
    // One transaction: the serial (never reused, listed by `show certificates`), the certificate
    // and its encrypted key.
    db_.transact([&] {
        db_.issue(std::nullopt, [&](std::uint64_t serial) {
            auto made = make_responder_cert(g.cert.get(), issuer_key, key.get(), serial, from, to,
                                            options_.server.name);
            if (!made)
                throw store_error("cannot make the OCSP responder certificate: " + made.error());
            cert = std::move(*made);
            return store::built_certificate{to_der(cert.get()), subject_string(cert.get()), from,
                                            to};
        });
        db_.set_meta(cert_key, to_pem(cert.get()));
        db_.set_meta(key_key, encrypt_private_key_pem(key.get(), options_.passphrase));
    });
    g.responder_cert = std::move(cert);
    g.responder_key = std::move(key);
}

http_answer ocsp_responder::answer(byte_view der, time_point now) {
    const unsigned char* p = der.data();
    ocsp_request_ptr req{
        der.empty() ? nullptr : d2i_OCSP_REQUEST(nullptr, &p, static_cast<long>(der.size()))};
    if (!req || p != der.data() + der.size()) {
        drain_openssl_errors();
        return ocsp_answer(ocsp_malformed_response(),
                           "OCSP malformedRequest: not a DER OCSPRequest");
    }
    const int count = OCSP_request_onereq_count(req.get());
    if (count <= 0 || count > max_certids) {
        return ocsp_answer(
            ocsp_malformed_response(),
            fmt::format("OCSP malformedRequest: {} CertIDs (1..{})", count, max_certids));
    }
    refresh_generations();
    ocsp_basicresp_ptr bs{OCSP_BASICRESP_new()};
    const asn1_time_ptr this_update = to_asn1_time(now);
    if (!bs || !this_update)
        return ocsp_answer(status_only_response(OCSP_RESPONSE_STATUS_INTERNALERROR),
                           "OCSP internalError");
    generation* signer = nullptr;
    std::string summary;
    for (int i = 0; i < count; ++i) {
        OCSP_CERTID* cid = OCSP_onereq_get0_id(OCSP_request_onereq_get0(req.get(), i));
        ASN1_OBJECT* md_oid = nullptr;
        ASN1_INTEGER* serial_asn1 = nullptr;
        OCSP_id_get0_info(nullptr, &md_oid, nullptr, &serial_asn1, cid);
        const EVP_MD* md = md_oid ? EVP_get_digestbyobj(md_oid) : nullptr;
        generation* issuer = nullptr;
        for (auto& [id, g] : generations_) {
            if (md == nullptr)
                break;
            ocsp_certid_ptr ours{OCSP_cert_to_id(md, nullptr, g.cert.get())};
            if (ours && OCSP_id_issuer_cmp(ours.get(), cid) == 0) {
                issuer = &g;
                break;
            }
        }
        std::uint64_t serial = 0;
        const bool serial_ok =
            serial_asn1 != nullptr && ASN1_INTEGER_get_uint64(&serial, serial_asn1) == 1;
        ERR_clear_error();
        std::optional<certificate_record> record;
        if (issuer != nullptr && serial_ok) {
            record = db_.certificate(serial);
            // The serial must be one this generation signed (serials are unique across
            // generations; the issuer name is the same for all of them).
            if (record) {
                auto cert = x509_from_der(record->der);
                if (!cert || X509_verify(cert->get(), X509_get0_pubkey(issuer->cert.get())) != 1)
                    record.reset();
                ERR_clear_error();
            }
        }
        if (issuer != nullptr && signer == nullptr)
            signer = issuer;
        std::string status;
        OCSP_SINGLERESP* single = nullptr;
        if (!record) {
            status = "unknown";
            single = OCSP_basic_add1_status(bs.get(), cid, V_OCSP_CERTSTATUS_UNKNOWN, 0, nullptr,
                                            this_update.get(), nullptr);
        } else if (record->revoked_at) {
            const asn1_time_ptr when = to_asn1_time(*record->revoked_at);
            const int reason = record->revocation_reason.value_or(OCSP_REVOKED_STATUS_NOSTATUS);
            status = record->revocation_reason
                         ? fmt::format("revoked ({})", crl_reason_name(*record->revocation_reason))
                         : std::string{"revoked"};
            single = OCSP_basic_add1_status(bs.get(), cid, V_OCSP_CERTSTATUS_REVOKED, reason,
                                            when.get(), this_update.get(), nullptr);
        } else {
            status = "good";
            single = OCSP_basic_add1_status(bs.get(), cid, V_OCSP_CERTSTATUS_GOOD, 0, nullptr,
                                            this_update.get(), nullptr);
        }
        if (single == nullptr) {
            drain_openssl_errors();
            return ocsp_answer(status_only_response(OCSP_RESPONSE_STATUS_INTERNALERROR),
                               "OCSP internalError: add status");
        }
        if (serial_ok) {
            summary += fmt::format("{}{:X} {}", summary.empty() ? "" : ", ", serial, status);
        } else {
            summary += fmt::format("{}? {}", summary.empty() ? "" : ", ", status);
        }
    }
    // RFC 6960 §4.4.1 / RFC 8954: echo the request's nonce (2 = the request had none).
    if (OCSP_copy_nonce(bs.get(), req.get()) <= 0) {
        drain_openssl_errors();
        return ocsp_answer(status_only_response(OCSP_RESPONSE_STATUS_INTERNALERROR),
                           "OCSP internalError: nonce");
    }
    if (signer == nullptr) {
        for (auto& [id, g] : generations_) {
            if (g.state == ca_state::active)
                signer = &g;
        }
    }
    if (signer == nullptr) {
        return ocsp_answer(status_only_response(OCSP_RESPONSE_STATUS_INTERNALERROR),
                           "OCSP internalError: no CA");
    }
    X509* sign_cert = signer->cert.get();
    EVP_PKEY* sign_key = nullptr;
    try {
        const bool ca_valid_now =
            not_before(signer->cert.get()) <= now && now < not_after(signer->cert.get());
        if (options_.ocsp_delegated_responder && ca_valid_now) {
            ensure_responder(*signer, now);
            sign_cert = signer->responder_cert.get();
            sign_key = signer->responder_key.get();
        } else {
            sign_key = ca_key(*signer);
        }
    } catch (const std::exception& e) {
        return ocsp_answer(status_only_response(OCSP_RESPONSE_STATUS_INTERNALERROR),
                           fmt::format("OCSP internalError: {}", e.what()));
    }
    // The signer's certificate goes in `certs` (flags 0): a client finds the delegated
    // responder there. ResponderID by name.
    if (OCSP_basic_sign(bs.get(), sign_cert, sign_key, EVP_sha256(), nullptr, 0) != 1) {
        const auto why = drain_openssl_errors();
        return ocsp_answer(status_only_response(OCSP_RESPONSE_STATUS_INTERNALERROR),
                           "OCSP internalError: sign: " + why);
    }
    ocsp_response_ptr resp{OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs.get())};
    if (!resp) {
        drain_openssl_errors();
        return ocsp_answer(status_only_response(OCSP_RESPONSE_STATUS_INTERNALERROR),
                           "OCSP internalError: encode");
    }
    return ocsp_answer(
        response_der(resp.get()),
        fmt::format("OCSP {} (signed by {}{})", summary,
                    sign_cert == signer->cert.get() ? "CA generation " : "responder of generation ",
                    signer->id));
}

}  // namespace pkisim::scep
