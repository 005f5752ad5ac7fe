// pkiMessage decode / CertRep encode round trips with real OpenSSL (scep-wire.md §0, §1.5).
#include "pkisim/scep/codec.hpp"

#include <array>
#include <cctype>
#include <tuple>

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "support_pki.hpp"

namespace pkisim::scep {
namespace {

using namespace testing;

// The SignerInfo of a DER SignedData (for looking at what went on the wire).
struct signed_view {
    pkcs7_ptr p7;
    PKCS7_SIGNER_INFO* si = nullptr;
    explicit signed_view(const bytes& der) : p7(pkcs7_from_der(der).value()) {
        si = sk_PKCS7_SIGNER_INFO_value(PKCS7_get_signer_info(p7.get()), 0);
    }
    int digest_nid() const {
        X509_ALGOR* dig = nullptr;
        X509_ALGOR* sig = nullptr;
        PKCS7_SIGNER_INFO_get0_algs(si, nullptr, &dig, &sig);
        return OBJ_obj2nid(dig->algorithm);
    }
    int signature_nid() const {
        X509_ALGOR* sig = nullptr;
        PKCS7_SIGNER_INFO_get0_algs(si, nullptr, nullptr, &sig);
        return OBJ_obj2nid(sig->algorithm);
    }
    bool has_attr(const char* oid) const {
        ASN1_OBJECT* obj = OBJ_txt2obj(oid, 1);
        const int nid = OBJ_obj2nid(obj);
        ASN1_OBJECT_free(obj);
        return nid != NID_undef && PKCS7_get_signed_attribute(si, nid) != nullptr;
    }
};

// certmonger's check (scep-wire §0.14): PKCS7_verify with no indata and flags 0 (default
// purpose smimesign, full chain to `trusted`), at test_epoch() + 1 day instead of the wall clock.
int certmonger_verify(const bytes& der, X509* trusted) {
    pkcs7_ptr p7 = pkcs7_from_der(der).value();
    x509_store_ptr store{X509_STORE_new()};
    X509_STORE_add_cert(store.get(), trusted);
    X509_VERIFY_PARAM_set_time(
        X509_STORE_get0_param(store.get()),
        std::chrono::floor<std::chrono::seconds>(test_epoch() + timers::days{1})
            .time_since_epoch()
            .count());
    bio_ptr out{BIO_new(BIO_s_mem())};
    const int r = PKCS7_verify(p7.get(), nullptr, store.get(), nullptr, out.get(), 0);
    ERR_clear_error();
    return r;
}

class pki_message_round_trip : public ::testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(pki_message_round_trip, reply_uses_the_clients_cipher_and_digest) {
    const auto [cipher, digest] = GetParam();
    const authority ca = make_ca();
    const client c = make_client();
    request_options o;
    o.cipher_nid = cipher;
    o.digest_nid = digest;
    const bytes der = c.pkcs_req({ca.cert.get()}, o);
    const std::array keys{ca.decryption()};

    auto req = decode_pki_message(der, keys);
    ASSERT_TRUE(req) << req.error().text;
    EXPECT_EQ(req->type, message_type::pkcs_req);
    EXPECT_EQ(req->transaction_id, c.transaction_id);
    EXPECT_EQ(req->sender_nonce, test_nonce(1));
    EXPECT_EQ(req->cipher_nid, cipher);
    EXPECT_EQ(req->digest_nid, digest);
    EXPECT_EQ(req->recipient_index, 0u);
    EXPECT_TRUE(req->signer_is_self_signed);
    EXPECT_EQ(X509_cmp(req->signer.get(), c.self_signed.get()), 0);
    ASSERT_TRUE(std::holds_alternative<csr_request>(req->data));
    EXPECT_EQ(csr_of(*req).challenge_password, "secret");
    EXPECT_EQ(csr_of(*req).subject, "CN=router1,O=lab");
    EXPECT_TRUE(same_public_key(csr_of(*req).public_key, c.key));
    ASSERT_TRUE(req->signing_time);
    EXPECT_EQ(*req->signing_time, test_epoch());

    const x509_ptr issued = issue_for(c, ca, 2);
    cert_rep_params p =
        success_for(req->context(), ca.cert.get(), ca.key, {issued.get()}, test_epoch());
    p.sender_nonce = test_nonce(100);
    const bytes reply = encode_cert_rep(p).value();

    // scep-wire §0.4: rsaEncryption in SignerInfo; §0.3: the client's digest.
    const signed_view view{reply};
    EXPECT_EQ(view.signature_nid(), NID_rsaEncryption);
    EXPECT_EQ(view.digest_nid(), digest);
    for (const char* oid :
         {"2.16.840.1.113733.1.9.2", "2.16.840.1.113733.1.9.3", "2.16.840.1.113733.1.9.5",
          "2.16.840.1.113733.1.9.6", "2.16.840.1.113733.1.9.7", "1.2.840.113549.1.9.3",
          "1.2.840.113549.1.9.4", "1.2.840.113549.1.9.5"}) {
        EXPECT_TRUE(view.has_attr(oid)) << oid;
    }
    EXPECT_FALSE(view.has_attr("2.16.840.1.113733.1.9.4"));  // no failInfo on SUCCESS

    const std::array trusted{ca.cert.get()};
    auto rep = decode_cert_rep(reply, c.self_signed.get(), c.key, trusted);
    ASSERT_TRUE(rep) << rep.error().message();
    EXPECT_EQ(rep->status, pki_status::success);
    EXPECT_EQ(rep->transaction_id, c.transaction_id);
    EXPECT_EQ(rep->recipient_nonce, test_nonce(1));
    EXPECT_EQ(rep->sender_nonce, test_nonce(100));
    EXPECT_EQ(rep->cipher_nid, cipher);  // scep-wire §0.2
    EXPECT_EQ(rep->digest_nid, digest);
    ASSERT_EQ(rep->certs.size(), 1u);
    EXPECT_EQ(X509_cmp(rep->certs[0].get(), issued.get()), 0);
    EXPECT_EQ(certmonger_verify(reply, ca.cert.get()), 1);
}

INSTANTIATE_TEST_SUITE_P(
    codec, pki_message_round_trip,
    ::testing::Combine(::testing::Values(NID_aes_128_cbc, NID_aes_256_cbc, NID_des_ede3_cbc),
                       ::testing::Values(NID_sha1, NID_sha256, NID_sha384, NID_sha512)),
    [](const auto& param_info) {
        std::string name = algorithm_name(std::get<0>(param_info.param)) + "_" +
                           algorithm_name(std::get<1>(param_info.param));
        for (char& ch : name) {
            ch = std::isalnum(static_cast<unsigned char>(ch)) != 0 ? ch : '_';
        }
        return name;
    });

// Decodes a request with `keys`, answers it with `p` (filled in by the callback) and reads the
// reply as the client.
bytes answer(const pki_request& req, const authority& signer, pki_status status,
             std::vector<X509*> issued = {}, std::vector<X509_CRL*> crls = {}) {
    cert_rep_params p;
    switch (status) {
        case pki_status::success:
            p = success_for(req.context(), signer.cert.get(), signer.key, std::move(issued),
                            test_epoch());
            p.crls = std::move(crls);
            break;
        case pki_status::pending:
            p = pending_for(req.context(), signer.cert.get(), signer.key, test_epoch());
            break;
        case pki_status::failure:
            p = failure_for(req.context(), signer.cert.get(), signer.key, fail_info::bad_cert_id,
                            "no such certificate", test_epoch());
            break;
    }
    return encode_cert_rep(p).value();
}

TEST(codec_renewal, renewal_req_signed_by_a_client_auth_certificate_decodes_and_chains) {
    const authority ca = make_ca();
    const client c = make_client("client1", "CN=router1,O=lab", "secret");
    // The old certificate carries EKU clientAuth only: purpose ANY must accept it (§0.6).
    x509_req_ptr old_csr = make_csr(c.key, "CN=router1,O=lab");
    {
        X509V3_CTX ctx;
        X509V3_set_ctx(&ctx, nullptr, nullptr, old_csr.get(), nullptr, 0);
        x509_extension_ptr ext{X509V3_EXT_conf_nid(nullptr, &ctx, NID_ext_key_usage, "clientAuth")};
        STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
        sk_X509_EXTENSION_push(exts, ext.get());
        X509_REQ_add_extensions(old_csr.get(), exts);
        sk_X509_EXTENSION_free(exts);
        X509_REQ_sign(old_csr.get(), c.key, EVP_sha256());
    }
    issue_options o;
    o.validity = {test_epoch(), test_epoch() + timers::days{365}};
    o.serial = 7;
    o.copy_requested_extensions = true;
    const x509_ptr old_cert = issue_certificate(old_csr.get(), ca.cert.get(), ca.key, o).value();
    ASSERT_GE(X509_get_extension_flags(old_cert.get()) & EXFLAG_XKUSAGE, 1u);

    const client renewing = make_client("client2", "CN=router1,O=lab", std::nullopt);
    const std::array keys{ca.decryption()};
    for (const bool as_pkcs_req : {false, true}) {
        const bytes der = as_pkcs_req
                              ? renewing.pkcs_req({ca.cert.get()}, {}, old_cert.get(), c.key)
                              : renewing.renewal_req({ca.cert.get()}, old_cert.get(), c.key);
        auto req = decode_pki_message(der, keys);
        ASSERT_TRUE(req) << req.error().text;
        EXPECT_EQ(req->type, as_pkcs_req ? message_type::pkcs_req : message_type::renewal_req);
        EXPECT_FALSE(req->signer_is_self_signed);
        EXPECT_EQ(X509_cmp(req->signer.get(), old_cert.get()), 0);
        EXPECT_FALSE(csr_of(*req).challenge_password.has_value());
        EXPECT_TRUE(same_public_key(csr_of(*req).public_key, renewing.key));

        const std::array trusted{ca.cert.get()};
        EXPECT_TRUE(
            verify_signer_chain(req->signer.get(), trusted, test_epoch() + timers::days{300}));
        EXPECT_EQ(verify_signer_chain(req->signer.get(), trusted, test_epoch() + timers::days{400})
                      .error(),
                  make_error_code(error::signer_expired));
        const authority other = make_ca("shadow", "CN=other,O=lab");
        const std::array wrong{other.cert.get()};
        EXPECT_EQ(verify_signer_chain(req->signer.get(), wrong, test_epoch()).error(),
                  make_error_code(error::signer_not_trusted));

        // SUCCESS goes to the old certificate (RFC 8894 §2.3).
        const x509_ptr issued = issue_for(renewing, ca, 8);
        const bytes reply = answer(*req, ca, pki_status::success, {issued.get()});
        auto rep = decode_cert_rep(reply, old_cert.get(), c.key, trusted);
        ASSERT_TRUE(rep) << rep.error().message();
        ASSERT_EQ(rep->certs.size(), 1u);
        EXPECT_EQ(X509_cmp(rep->certs[0].get(), issued.get()), 0);
    }
}

TEST(codec_cert_poll, issuer_and_subject_round_trips) {
    const authority ca = make_ca();
    const client c = make_client();
    const std::array keys{ca.decryption()};
    auto req = decode_pki_message(c.cert_poll({ca.cert.get()}, ca.cert.get()), keys);
    ASSERT_TRUE(req) << req.error().text;
    EXPECT_EQ(req->type, message_type::cert_poll);
    ASSERT_TRUE(std::holds_alternative<issuer_and_subject>(req->data));
    EXPECT_EQ(name_to_string(poll_of(*req).issuer.get()), "CN=ca-server,O=lab");
    EXPECT_EQ(name_to_string(poll_of(*req).subject.get()), "CN=router1,O=lab");
    EXPECT_EQ(req->transaction_id, c.transaction_id);
}

TEST(codec_get_cert, issuer_and_serial_round_trips_and_reply_carries_the_certificate) {
    const authority ca = make_ca();
    const client c = make_client();
    const x509_ptr issued = issue_for(c, ca, 0x1A2B);
    const std::array keys{ca.decryption()};
    auto req = decode_pki_message(c.get_cert({ca.cert.get()}, issued.get()), keys);
    ASSERT_TRUE(req) << req.error().text;
    EXPECT_EQ(req->type, message_type::get_cert);
    ASSERT_TRUE(std::holds_alternative<issuer_and_serial>(req->data));
    EXPECT_EQ(cert_id_of(*req).serial_hex, "1A2B");
    EXPECT_EQ(cert_id_of(*req).serial_u64, 0x1A2Bu);
    EXPECT_EQ(X509_NAME_cmp(cert_id_of(*req).issuer.get(), X509_get_subject_name(ca.cert.get())),
              0);

    const bytes reply = answer(*req, ca, pki_status::success, {issued.get()});
    const std::array trusted{ca.cert.get()};
    auto rep = decode_cert_rep(reply, c.self_signed.get(), c.key, trusted);
    ASSERT_TRUE(rep);
    ASSERT_EQ(rep->certs.size(), 1u);
    EXPECT_EQ(X509_cmp(rep->certs[0].get(), issued.get()), 0);
}

TEST(codec_get_crl, reply_carries_the_crl_in_the_degenerate_content) {
    const authority ca = make_ca();
    const client c = make_client();
    const x509_ptr issued = issue_for(c, ca, 5);
    const std::array keys{ca.decryption()};
    auto req = decode_pki_message(c.get_crl({ca.cert.get()}, issued.get()), keys);
    ASSERT_TRUE(req) << req.error().text;
    EXPECT_EQ(req->type, message_type::get_crl);
    EXPECT_EQ(cert_id_of(*req).serial_u64, 5u);

    const std::array revoked{revoked_entry{5, test_epoch() + timers::days{1}, std::nullopt}};
    const x509_crl_ptr crl =
        make_crl(ca.cert.get(), ca.key, revoked, test_epoch() + timers::days{1},
                 test_epoch() + timers::days{8}, 1, timers::hash_algorithm::sha256)
            .value();
    const bytes reply = answer(*req, ca, pki_status::success, {}, {crl.get()});
    const std::array trusted{ca.cert.get()};
    auto rep = decode_cert_rep(reply, c.self_signed.get(), c.key, trusted);
    ASSERT_TRUE(rep) << rep.error().message();
    EXPECT_TRUE(rep->certs.empty());
    ASSERT_EQ(rep->crls.size(), 1u);
    EXPECT_TRUE(crl_lists(rep->crls[0].get(), 5));
}

TEST(codec_cert_rep, pending_and_failure_verify_like_certmonger_with_empty_attached_content) {
    const authority ca = make_ca();
    const client c = make_client();
    const std::array keys{ca.decryption()};
    auto req = decode_pki_message(c.pkcs_req({ca.cert.get()}), keys);
    ASSERT_TRUE(req);
    for (const pki_status status : {pki_status::pending, pki_status::failure}) {
        const bytes reply = answer(*req, ca, status);
        // scep-wire §0.14: eContent = empty OCTET STRING, present, so PKCS7_verify(..., 0) works.
        EXPECT_EQ(certmonger_verify(reply, ca.cert.get()), 1) << to_string(status);
        const signed_view view{reply};
        EXPECT_EQ(view.signature_nid(), NID_rsaEncryption);
        EXPECT_FALSE(PKCS7_get_detached(view.p7.get()));
        ASN1_OCTET_STRING* os = PKCS7_get_octet_string(view.p7->d.sign->contents);
        ASSERT_NE(os, nullptr);
        EXPECT_EQ(ASN1_STRING_length(os), 0);
        EXPECT_EQ(OBJ_obj2nid(view.p7->d.sign->contents->type), NID_pkcs7_data);
        EXPECT_EQ(view.has_attr("2.16.840.1.113733.1.9.4"), status == pki_status::failure);
        EXPECT_TRUE(view.has_attr("2.16.840.1.113733.1.9.5"));  // fresh senderNonce (certmonger)

        const std::array trusted{ca.cert.get()};
        auto rep = decode_cert_rep(reply, c.self_signed.get(), c.key, trusted);
        ASSERT_TRUE(rep) << rep.error().message();
        EXPECT_EQ(rep->status, status);
        EXPECT_EQ(rep->recipient_nonce, test_nonce(1));
        EXPECT_EQ(rep->sender_nonce.size(), 16u);
        EXPECT_NE(rep->sender_nonce, test_nonce(1));
        EXPECT_TRUE(rep->certs.empty());
        if (status == pki_status::failure) {
            EXPECT_EQ(rep->failure, fail_info::bad_cert_id);
            EXPECT_EQ(rep->fail_info_text, "no such certificate");
        } else {
            EXPECT_FALSE(rep->failure.has_value());
        }
    }
}

TEST(codec_cert_rep, ra_signed_reply_carries_the_ra_and_ca_certificates) {
    const authority ca = make_ca();
    const authority ra = make_ra(ca);
    const client c = make_client();
    const std::array keys{ra.decryption()};
    auto req = decode_pki_message(c.pkcs_req({ra.cert.get()}), keys);
    ASSERT_TRUE(req) << req.error().text;
    const x509_ptr issued = issue_for(c, ca, 3);
    cert_rep_params p =
        success_for(req->context(), ra.cert.get(), ra.key, {issued.get()}, test_epoch());
    p.extra_certs = {ca.cert.get()};
    p.issued_in_outer_certs = true;
    const bytes reply = encode_cert_rep(p).value();
    EXPECT_EQ(certmonger_verify(reply, ca.cert.get()), 1);  // RA chains to the CA, smimesign ok
    const std::array trusted{ra.cert.get()};
    auto rep = decode_cert_rep(reply, c.self_signed.get(), c.key, trusted);
    ASSERT_TRUE(rep) << rep.error().message();
    ASSERT_EQ(rep->outer_certs.size(), 3u);  // RA, issued, CA
    EXPECT_EQ(X509_cmp(rep->signer.get(), ra.cert.get()), 0);
    // A reply signed by someone else is refused by the client side.
    const std::array wrong{ca.cert.get()};
    EXPECT_EQ(decode_cert_rep(reply, c.self_signed.get(), c.key, wrong).error(),
              make_error_code(error::signer_not_trusted));
}

TEST(codec_envelope, several_recipients_pick_ours_and_report_which) {
    const authority ca = make_ca();
    const authority shadow = make_shadow(ca);
    const authority ra = make_ra(ca);
    const client c = make_client();
    const std::array keys{ca.decryption(), shadow.decryption()};

    // micromdm encrypts to every GetCACert certificate (scep-wire §1.5 step 3).
    auto both = decode_pki_message(c.pkcs_req({ra.cert.get(), ca.cert.get()}), keys);
    ASSERT_TRUE(both) << both.error().text;
    EXPECT_EQ(both->recipient_index, 0u);

    // Encrypted to the shadow: a rollover request (model rule 6).
    auto rollover = decode_pki_message(c.pkcs_req({shadow.cert.get()}), keys);
    ASSERT_TRUE(rollover) << rollover.error().text;
    EXPECT_EQ(rollover->recipient_index, 1u);

    // Encrypted to someone else: badRequest, but signed (context present).
    auto other = decode_pki_message(c.pkcs_req({ra.cert.get()}), keys);
    ASSERT_FALSE(other);
    EXPECT_EQ(other.error().code, make_error_code(error::not_for_us));
    EXPECT_EQ(other.error().info, fail_info::bad_request);
    ASSERT_TRUE(other.error().context);
    EXPECT_EQ(other.error().context->transaction_id, c.transaction_id);
    EXPECT_TRUE(to_wire(other.error()).failure.has_value());
}

TEST(codec_envelope, oaep_key_transport_is_accepted) {
    const authority ca = make_ca();
    const client c = make_client();
    request_options o;
    o.oaep = true;
    const std::array keys{ca.decryption()};
    auto req = decode_pki_message(c.pkcs_req({ca.cert.get()}, o), keys);
    ASSERT_TRUE(req) << req.error().text;
    EXPECT_TRUE(req->oaep);
    EXPECT_EQ(csr_of(*req).challenge_password, "secret");
}

TEST(codec_legacy, single_des_and_md5_are_refused_without_legacy_crypto) {
    load_providers(true);  // the client side needs DES to build the request
    const authority ca = make_ca();
    const client c = make_client();
    const std::array keys{ca.decryption()};
    request_options des;
    des.cipher_nid = NID_des_cbc;
    des.digest_nid = NID_sha1;  // micromdm scepclient 2.1.0
    request_options md5;
    md5.cipher_nid = NID_aes_128_cbc;
    md5.digest_nid = NID_md5;
    for (const auto& o : {des, md5}) {
        auto req = decode_pki_message(c.pkcs_req({ca.cert.get()}, o), keys);
        ASSERT_FALSE(req);
        EXPECT_EQ(req.error().info, fail_info::bad_alg);
        EXPECT_EQ(req.error().code, make_error_code(error::legacy_algorithm_disabled));
        EXPECT_NE(req.error().text.find("--legacy-crypto"), std::string::npos) << req.error().text;
        ASSERT_TRUE(req.error().context);
        // The FAILURE itself is never signed with MD5 unless legacy is on.
        EXPECT_NE(req.error().context->digest_nid, NID_md5);
        const bytes reply =
            encode_cert_rep(failure_for(*req.error().context, ca.cert.get(), ca.key,
                                        req.error().info, req.error().text, test_epoch()))
                .value();
        const std::array trusted{ca.cert.get()};
        auto rep = decode_cert_rep(reply, c.self_signed.get(), c.key, trusted);
        ASSERT_TRUE(rep);
        EXPECT_EQ(rep->failure, fail_info::bad_alg);
    }
}

TEST(codec_legacy, single_des_with_md5_is_accepted_and_answered_in_kind_with_legacy_crypto) {
    load_providers(true);
    ASSERT_TRUE(legacy_provider_loaded());
    const authority ca = make_ca();
    const client c = make_client();
    const std::array keys{ca.decryption()};
    request_options o;  // old IOS: DES-CBC + MD5
    o.cipher_nid = NID_des_cbc;
    o.digest_nid = NID_md5;
    decode_options legacy;
    legacy.allow_legacy = true;
    auto req = decode_pki_message(c.pkcs_req({ca.cert.get()}, o), keys, legacy);
    ASSERT_TRUE(req) << req.error().text;
    EXPECT_EQ(req->cipher_nid, NID_des_cbc);
    EXPECT_EQ(req->digest_nid, NID_md5);
    const x509_ptr issued = issue_for(c, ca, 2);
    const bytes reply = answer(*req, ca, pki_status::success, {issued.get()});
    const std::array trusted{ca.cert.get()};
    auto rep = decode_cert_rep(reply, c.self_signed.get(), c.key, trusted, legacy);
    ASSERT_TRUE(rep) << rep.error().message();
    EXPECT_EQ(rep->cipher_nid, NID_des_cbc);
    EXPECT_EQ(rep->digest_nid, NID_md5);
    ASSERT_EQ(rep->certs.size(), 1u);
}

TEST(codec_bad_input, tampered_signature_is_bad_message_check_with_reply_context) {
    const authority ca = make_ca();
    const client c = make_client();
    bytes der = c.pkcs_req({ca.cert.get()});
    der.back() ^= 0x01;  // the RSA signature is the last field of the SignerInfo
    const std::array keys{ca.decryption()};
    auto req = decode_pki_message(der, keys);
    ASSERT_FALSE(req);
    EXPECT_EQ(req.error().info, fail_info::bad_message_check);
    EXPECT_EQ(req.error().code, make_error_code(error::bad_signature));
    ASSERT_TRUE(req.error().context);
    EXPECT_EQ(req.error().context->sender_nonce, test_nonce(1));
    EXPECT_EQ(X509_cmp(req.error().context->signer.get(), c.self_signed.get()), 0);
    const wire_answer w = to_wire(req.error());
    EXPECT_EQ(w.failure, fail_info::bad_message_check);
}

TEST(codec_bad_input, truncated_and_garbage_der_fail_without_context) {
    const authority ca = make_ca();
    const client c = make_client();
    const bytes der = c.pkcs_req({ca.cert.get()});
    const std::array keys{ca.decryption()};
    const std::vector<bytes> inputs{
        bytes{},
        bytes(der.begin(), der.begin() + static_cast<std::ptrdiff_t>(der.size() / 2)),
        bytes(der.begin(), der.end() - 1),
        bytes{0x30, 0x03, 0x02, 0x01, 0x01},
        bytes(100, 0xff),
        [&] {
            bytes b = der;
            b.push_back(0);
            return b;
        }(),
    };
    for (const bytes& in : inputs) {
        auto req = decode_pki_message(in, keys);
        ASSERT_FALSE(req);
        EXPECT_FALSE(req.error().context.has_value()) << req.error().text;
        EXPECT_EQ(to_wire(req.error()).http_status, 400u);
        EXPECT_FALSE(to_wire(req.error()).failure.has_value());
    }
}

TEST(codec_bad_input, oversized_nonce_or_message_is_refused_without_context) {
    const authority ca = make_ca();
    const client c = make_client();
    const std::array keys{ca.decryption()};
    request_options o;
    o.sender_nonce = bytes(65, 0x42);
    auto req = decode_pki_message(c.pkcs_req({ca.cert.get()}, o), keys);
    ASSERT_FALSE(req);
    EXPECT_EQ(req.error().code, make_error_code(error::bad_attribute));
    EXPECT_FALSE(req.error().context);

    // Other nonce sizes are tolerated.
    o.sender_nonce = bytes(8, 0x42);
    EXPECT_TRUE(decode_pki_message(c.pkcs_req({ca.cert.get()}, o), keys));

    decode_options small;
    small.max_message_size = 100;
    auto big = decode_pki_message(c.pkcs_req({ca.cert.get()}), keys, small);
    ASSERT_FALSE(big);
    EXPECT_EQ(to_wire(big.error()).http_status, 413u);
}

TEST(codec_bad_input, a_cert_rep_sent_as_request_is_bad_request) {
    const authority ca = make_ca();
    const client c = make_client();
    const std::array keys{ca.decryption()};
    auto req = decode_pki_message(c.pkcs_req({ca.cert.get()}), keys);
    ASSERT_TRUE(req);
    const bytes reply = answer(*req, ca, pki_status::pending);
    auto back = decode_pki_message(reply, keys);
    ASSERT_FALSE(back);
    EXPECT_EQ(back.error().code, make_error_code(error::unknown_message_type));
    EXPECT_EQ(back.error().info, fail_info::bad_request);
    EXPECT_TRUE(back.error().context);
}

TEST(codec_bad_input, csr_with_a_broken_self_signature_is_refused) {
    const authority ca = make_ca();
    client c = make_client();
    // Re-sign the CSR with another key: proof of possession fails.
    X509_REQ_sign(c.csr.get(), fixture_key("client2"), EVP_sha256());
    const std::array keys{ca.decryption()};
    auto req = decode_pki_message(c.pkcs_req({ca.cert.get()}), keys);
    ASSERT_FALSE(req);
    EXPECT_EQ(req.error().code, make_error_code(error::bad_csr_signature));
    EXPECT_EQ(req.error().info, fail_info::bad_request);
    EXPECT_TRUE(req.error().context);
}

TEST(codec_csr, utf8_challenge_password_is_read) {
    const authority ca = make_ca();
    csr_options o;
    o.challenge_utf8 = true;
    o.dns_names = {"router1.lab.example"};
    const client c = make_client("client1", "CN=router1,O=lab", "s\xc3\xa9same", o);
    const std::array keys{ca.decryption()};
    auto req = decode_pki_message(c.pkcs_req({ca.cert.get()}), keys);
    ASSERT_TRUE(req) << req.error().text;
    EXPECT_EQ(csr_of(*req).challenge_password, "s\xc3\xa9same");
}

TEST(codec_get_next_ca_cert, new_certificates_are_in_the_content_and_the_outer_set) {
    const authority ca = make_ca();
    const authority shadow = make_shadow(ca);
    const std::array news{shadow.cert.get()};
    const bytes der =
        encode_get_next_ca_cert(news, ca.cert.get(), ca.key, NID_sha256, test_epoch()).value();
    // Signed by the CURRENT CA, verifiable the way sscep does it.
    EXPECT_EQ(certmonger_verify(der, ca.cert.get()), 1);
    const std::array trusted{ca.cert.get()};
    auto next = parse_get_next_ca_cert(der, trusted);
    ASSERT_TRUE(next) << next.error().message();
    EXPECT_EQ(X509_cmp(next->signer.get(), ca.cert.get()), 0);
    ASSERT_EQ(next->content_certs.size(), 1u);
    ASSERT_EQ(next->outer_certs.size(), 1u);
    EXPECT_EQ(X509_cmp(next->content_certs[0].get(), shadow.cert.get()), 0);
    EXPECT_EQ(X509_cmp(next->outer_certs[0].get(), shadow.cert.get()), 0);
    // The shadow itself must not be accepted as signer.
    const std::array wrong{shadow.cert.get()};
    EXPECT_FALSE(parse_get_next_ca_cert(der, wrong));
}

TEST(codec_get_ca_cert, degenerate_certs_only_has_no_content_and_parses_back) {
    const authority ca = make_ca();
    const authority ra = make_ra(ca);
    const std::array certs{ca.cert.get(), ra.cert.get()};
    const bytes der = degenerate_certs_only(certs);
    const pkcs7_ptr p7 = pkcs7_from_der(der).value();
    EXPECT_EQ(OBJ_obj2nid(p7->d.sign->contents->type), NID_pkcs7_data);
    EXPECT_EQ(p7->d.sign->contents->d.ptr, nullptr);  // RFC 8894 §3.4: content omitted
    EXPECT_EQ(sk_PKCS7_SIGNER_INFO_num(p7->d.sign->signer_info), 0);
    auto bundle = parse_certs_only(der);
    ASSERT_TRUE(bundle);
    ASSERT_EQ(bundle->certs.size(), 2u);
    EXPECT_EQ(X509_cmp(bundle->certs[1].get(), ra.cert.get()), 0);
    auto single = parse_certs_only(to_der(ca.cert.get()));
    ASSERT_TRUE(single);
    EXPECT_EQ(single->certs.size(), 1u);
    EXPECT_FALSE(parse_certs_only(bytes{1, 2, 3}));
}

TEST(codec_get_ca_caps, lists_get_next_ca_cert_only_with_a_shadow) {
    const std::string with = get_ca_caps_body(true);
    const std::string without = get_ca_caps_body(false);
    EXPECT_EQ(
        without,
        "AES\nDES3\nPOSTPKIOperation\nRenewal\nSHA-1\nSHA-256\nSHA-384\nSHA-512\nSCEPStandard\n");
    EXPECT_NE(with.find("\nGetNextCACert\n"), std::string::npos);
    EXPECT_EQ(without.find("GetNextCACert"), std::string::npos);
    EXPECT_LE(with.size(), 1024u);  // certmonger's limit
}

TEST(codec_wire, one_mapper_turns_errors_into_fail_info_or_http_status) {
    struct row {
        error e;
        bool context;
        std::optional<fail_info> failure;
        unsigned http;
    };
    const row rows[] = {
        {error::bad_signature, true, fail_info::bad_message_check, 200},
        {error::legacy_algorithm_disabled, true, fail_info::bad_alg, 200},
        {error::unsupported_algorithm, true, fail_info::bad_alg, 200},
        {error::bad_time, true, fail_info::bad_time, 200},
        {error::unknown_certificate, true, fail_info::bad_cert_id, 200},
        {error::bad_challenge, true, fail_info::bad_request, 200},
        {error::not_for_us, true, fail_info::bad_request, 200},
        {error::internal, true, fail_info::bad_request, 200},
        {error::malformed_der, false, std::nullopt, 400},
        {error::bad_signature, false, std::nullopt, 400},
        {error::message_too_large, false, std::nullopt, 413},
        {error::internal, false, std::nullopt, 500},
    };
    for (const row& r : rows) {
        const wire_answer w = to_wire(make_error_code(r.e), r.context);
        EXPECT_EQ(w.failure, r.failure) << make_error_code(r.e).message();
        EXPECT_EQ(w.http_status, r.http) << make_error_code(r.e).message();
    }
    EXPECT_EQ(to_wire(std::make_error_code(std::errc::io_error), false).http_status, 500u);
    EXPECT_EQ(to_wire(std::error_code{}, false).http_status, 200u);
}

TEST(codec_bad_input, ber_indefinite_length_outer_encoding_is_accepted) {
    const authority ca = make_ca();
    const client c = make_client();
    const bytes der = c.pkcs_req({ca.cert.get()});
    // DER "30 82 LL LL 06 09 <signedData> A0 82 LL LL ..." -> BER "30 80 06 09 .. A0 80 .. 00 00 00
    // 00".
    ASSERT_EQ(der[0], 0x30);
    ASSERT_EQ(der[1], 0x82);
    ASSERT_EQ(der[15], 0xA0);
    ASSERT_EQ(der[16], 0x82);
    bytes ber{0x30, 0x80};
    ber.insert(ber.end(), der.begin() + 4, der.begin() + 15);
    ber.insert(ber.end(), {0xA0, 0x80});
    ber.insert(ber.end(), der.begin() + 19, der.end());
    ber.insert(ber.end(), {0, 0, 0, 0});
    const std::array keys{ca.decryption()};
    auto req = decode_pki_message(ber, keys);
    ASSERT_TRUE(req) << req.error().text;
    EXPECT_EQ(csr_of(*req).challenge_password, "secret");
}

}  // namespace
}  // namespace pkisim::scep
