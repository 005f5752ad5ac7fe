// Real client bytes captured from micromdm scepclient 2.1.0 (SHA-1 + single DES, scep-wire
// §0.1) and certmonger 0.79.17 (SHA-256 + AES-256, X.509 v1 signer), both Debian 12 packages;
// see tests/data/scep/README.md for how they were made.
#include <array>
#include <string>

#include <gtest/gtest.h>

#include "pkisim/scep/codec.hpp"
#include "support_pki.hpp"

namespace pkisim::scep {
namespace {

using namespace testing;

// The `message=` value of the captured GET: URL-safe base64 (micromdm/scep#249), no padding
// issues, message before operation (scep-wire §0.7). The HTTP layer has its own decoder; this
// one is just enough for the fixture.
bytes decode_base64_any(std::string_view text) {
    bytes out;
    std::uint32_t acc = 0;
    int bits = 0;
    for (const char c : text) {
        int v = -1;
        if (c >= 'A' && c <= 'Z') {
            v = c - 'A';
        } else if (c >= 'a' && c <= 'z') {
            v = c - 'a' + 26;
        } else if (c >= '0' && c <= '9') {
            v = c - '0' + 52;
        } else if (c == '+' || c == '-') {
            v = 62;
        } else if (c == '/' || c == '_') {
            v = 63;
        } else {
            continue;  // '=' and line breaks
        }
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<std::uint8_t>((acc >> bits) & 0xff));
        }
    }
    return out;
}

std::string url_unescape(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size()) {
            out += static_cast<char>(std::stoi(std::string{s.substr(i + 1, 2)}, nullptr, 16));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

bytes micromdm_get_request() {
    const std::string target = read_file(data_path("micromdm-pkcsreq-get.txt"));
    const auto start = target.find("message=") + 8;
    const auto end = target.find('&', start);
    return decode_base64_any(url_unescape(target.substr(start, end - start)));
}

struct capture_ca {
    x509_ptr cert = x509_from_pem(read_file(data_path("capture-ca.pem"))).value();
    EVP_PKEY* key = fixture_key("ca");
};

TEST(codec_micromdm, captured_pkcs_req_decodes_with_legacy_crypto) {
    load_providers(true);
    const capture_ca ca;
    const std::array keys{decryption_key{ca.cert.get(), ca.key}};
    decode_options legacy;
    legacy.allow_legacy = true;
    const std::string post = read_file(data_path("micromdm-pkcsreq.der"));
    for (const bytes& der : {bytes(post.begin(), post.end()), micromdm_get_request()}) {
        auto req = decode_pki_message(der, keys, legacy);
        ASSERT_TRUE(req) << req.error().text;
        EXPECT_EQ(req->type, message_type::pkcs_req);
        EXPECT_EQ(req->cipher_nid, NID_des_cbc);
        EXPECT_EQ(req->digest_nid, NID_sha1);
        // micromdm's transactionID is base64(SKI) (scep-wire §0.11).
        EXPECT_EQ(req->transaction_id, "ru1c/Y+lJNI3cBAOW/fm+BJrB/Y=");
        EXPECT_EQ(req->sender_nonce.size(), 16u);
        EXPECT_TRUE(req->signer_is_self_signed);
        EXPECT_EQ(subject_string(req->signer.get()), "O=scep-client,CN=SCEP SIGNER");
        ASSERT_TRUE(std::holds_alternative<csr_request>(req->data));
        EXPECT_EQ(csr_of(*req).challenge_password, "secret");
        EXPECT_NE(csr_of(*req).subject.find("CN=router-mm"), std::string::npos);
        EXPECT_TRUE(same_public_key(csr_of(*req).public_key, fixture_key("client1")));

        // The answer goes back in DES + SHA-1, which is what this client can read.
        const x509_ptr issued = [&] {
            issue_options o;
            o.validity = {not_before(ca.cert.get()), not_before(ca.cert.get()) + timers::days{365}};
            o.serial = 2;
            return issue_certificate(csr_of(*req).csr.get(), ca.cert.get(), ca.key, o).value();
        }();
        const bytes reply = encode_cert_rep(success_for(req->context(), ca.cert.get(), ca.key,
                                                        {issued.get()}, test_epoch()))
                                .value();
        auto rep = decode_cert_rep(reply, req->signer.get(), fixture_key("client1"), {}, legacy);
        ASSERT_TRUE(rep) << rep.error().message();
        EXPECT_EQ(rep->cipher_nid, NID_des_cbc);
        EXPECT_EQ(rep->digest_nid, NID_sha1);
        EXPECT_EQ(rep->recipient_nonce, req->sender_nonce);
    }
}

TEST(codec_micromdm, captured_pkcs_req_is_bad_alg_without_legacy_crypto) {
    const capture_ca ca;
    const std::array keys{decryption_key{ca.cert.get(), ca.key}};
    const std::string raw = read_file(data_path("micromdm-pkcsreq.der"));
    auto req = decode_pki_message(bytes(raw.begin(), raw.end()), keys);
    ASSERT_FALSE(req);
    EXPECT_EQ(req.error().info, fail_info::bad_alg);
    EXPECT_NE(req.error().text.find("--legacy-crypto"), std::string::npos);
    ASSERT_TRUE(req.error().context);
    EXPECT_EQ(req.error().context->digest_nid, NID_sha1);
    EXPECT_EQ(req.error().context->transaction_id, "ru1c/Y+lJNI3cBAOW/fm+BJrB/Y=");
}

TEST(codec_micromdm, captured_renewal_req_decodes_and_its_signer_chains) {
    load_providers(true);
    const capture_ca ca;
    const std::array keys{decryption_key{ca.cert.get(), ca.key}};
    decode_options legacy;
    legacy.allow_legacy = true;
    const std::string raw = read_file(data_path("micromdm-renewalreq.der"));
    auto req = decode_pki_message(bytes(raw.begin(), raw.end()), keys, legacy);
    ASSERT_TRUE(req) << req.error().text;
    EXPECT_EQ(req->type, message_type::renewal_req);
    EXPECT_FALSE(req->signer_is_self_signed);
    const x509_ptr old = x509_from_pem(read_file(data_path("micromdm-renewal-signer.pem"))).value();
    EXPECT_EQ(X509_cmp(req->signer.get(), old.get()), 0);
    // micromdm reuses its key and CSR on renewal (scep-wire §1.9).
    EXPECT_TRUE(same_public_key(csr_of(*req).public_key, X509_get0_pubkey(old.get())));
    const std::array trusted{ca.cert.get()};
    EXPECT_TRUE(
        verify_signer_chain(req->signer.get(), trusted, not_before(old.get()) + timers::days{1}));
    EXPECT_EQ(
        verify_signer_chain(req->signer.get(), trusted, not_after(old.get()) + timers::days{1})
            .error(),
        make_error_code(error::signer_expired));
}

TEST(codec_certmonger, captured_pkcs_req_decodes_and_is_answered_in_aes_256_and_sha_256) {
    const capture_ca ca;
    const std::array keys{decryption_key{ca.cert.get(), ca.key}};
    const std::string raw = read_file(data_path("certmonger-pkcsreq.der"));
    auto req = decode_pki_message(bytes(raw.begin(), raw.end()), keys);
    ASSERT_TRUE(req) << req.error().text;
    EXPECT_EQ(req->type, message_type::pkcs_req);
    EXPECT_EQ(req->cipher_nid, NID_aes_256_cbc);
    EXPECT_EQ(req->digest_nid, NID_sha256);
    EXPECT_TRUE(req->signer_is_self_signed);
    EXPECT_EQ(X509_get_version(req->signer.get()), 0);  // X.509 v1 signer (scep-wire §1.9)
    EXPECT_FALSE(req->transaction_id.empty());
    ASSERT_TRUE(std::holds_alternative<csr_request>(req->data));
    EXPECT_EQ(csr_of(*req).challenge_password, "secret");
    EXPECT_EQ(csr_of(*req).subject, "CN=cm1,O=lab");

    auto client_key = private_key_from_pem(read_file(data_path("certmonger-client.key")));
    ASSERT_TRUE(client_key);
    EXPECT_TRUE(same_public_key(csr_of(*req).public_key, client_key->get()));
    issue_options o;
    o.validity = {test_epoch(), test_epoch() + timers::days{365}};
    o.serial = 3;
    const x509_ptr issued =
        issue_certificate(csr_of(*req).csr.get(), ca.cert.get(), ca.key, o).value();
    EXPECT_NE(X509_get_ext_by_NID(issued.get(), NID_subject_alt_name, -1), -1);  // -D cm1.example
    const bytes reply = encode_cert_rep(success_for(req->context(), ca.cert.get(), ca.key,
                                                    {issued.get()}, test_epoch()))
                            .value();
    const std::array trusted{ca.cert.get()};
    auto rep = decode_cert_rep(reply, req->signer.get(), client_key->get(), trusted);
    ASSERT_TRUE(rep) << rep.error().message();
    EXPECT_EQ(rep->cipher_nid, NID_aes_256_cbc);
    EXPECT_EQ(rep->digest_nid, NID_sha256);
    ASSERT_EQ(rep->certs.size(), 1u);
}

TEST(codec_support, get_targets_carry_the_message_in_each_clients_style) {
    const authority ca = make_ca();
    const client c = make_client();
    const bytes der = c.pkcs_req({ca.cert.get()});
    const auto message_of = [](const std::string& target) {
        const auto start = target.find("message=") + 8;
        const auto end = target.find('&', start);
        return target.substr(start, end == std::string::npos ? std::string::npos : end - start);
    };
    const std::string cm = certmonger_get_target(der);
    const std::string mm = micromdm_get_target(der);
    const std::string ios = ios_get_target(der, "/scep/myscep/pkiclient.exe");
    EXPECT_EQ(cm.find('+'), std::string::npos);
    EXPECT_EQ(mm.rfind("/cgi-bin/pkiclient.exe?message=", 0), 0u);
    EXPECT_NE(ios.find("%0A"), std::string::npos);
    EXPECT_EQ(ios.rfind("/scep/myscep/pkiclient.exe?operation=PKIOperation&message=", 0), 0u);
    for (const std::string& t : {cm, mm, ios}) {
        EXPECT_EQ(decode_base64_any(url_unescape(message_of(t))), der) << t.substr(0, 80);
    }
}

}  // namespace
}  // namespace pkisim::scep
