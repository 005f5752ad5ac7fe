// CA-side certificate work (crypto.hpp) and the OpenSSL layer (openssl.hpp).
#include "pkisim/scep/crypto.hpp"

#include <gtest/gtest.h>
#include <openssl/x509v3.h>

#include "pkisim/scep/openssl.hpp"
#include "support_pki.hpp"

namespace pkisim::scep {
namespace {

using namespace testing;

// "XXXXXXXX XXXXXXXX ..." with `groups` groups of 8 upper-case hex digits (std::regex trips
// GCC 12's -Wmaybe-uninitialized under ASan -O1).
bool is_ios_fingerprint(const std::string& s, std::size_t groups) {
    if (s.size() != groups * 9 - 1) {
        return false;
    }
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        const bool ok =
            (i % 9 == 8) ? c == ' ' : ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'));
        if (!ok) {
            return false;
        }
    }
    return true;
}

std::uint32_t key_usage(X509* cert) {
    return X509_get_key_usage(cert);
}

std::string ext_text(X509* cert, int nid) {
    const int idx = X509_get_ext_by_NID(cert, nid, -1);
    if (idx < 0) {
        return {};
    }
    bio_ptr bio{BIO_new(BIO_s_mem())};
    X509V3_EXT_print(bio.get(), X509_get_ext(cert, idx), 0, 0);
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(len));
}

TEST(crypto_dn, parses_comma_form_in_written_order) {
    auto name = parse_dn("CN=ca-server,O=lab");
    ASSERT_TRUE(name);
    EXPECT_EQ(name_to_string(name->get()), "CN=ca-server,O=lab");
    EXPECT_EQ(X509_NAME_entry_count(name->get()), 2);
}

TEST(crypto_dn, parses_ios_issuer_name_form_with_blanks_and_missing_comma) {
    auto name = parse_dn("cn=ra, ou=ioscs RA, o=cisco C=pki");
    ASSERT_TRUE(name);
    EXPECT_EQ(name_to_string(name->get()), "CN=ra,OU=ioscs RA,O=cisco,C=pki");
    auto escaped = parse_dn("CN=a\\,b, hostname=r1.lab.example");
    ASSERT_TRUE(escaped);
    EXPECT_EQ(name_to_string(escaped->get()), "CN=a\\,b,unstructuredName=r1.lab.example");
}

TEST(crypto_dn, rejects_what_it_cannot_read) {
    for (const char* bad :
         {"", "ca-server", "CN=", "XX=1", "C=a,b=c", "C=\xc3\xa9", "=x", "CN=ok,O="}) {
        auto name = parse_dn(bad);
        EXPECT_FALSE(name) << bad;
        if (!name) {
            EXPECT_EQ(name.error(), make_error_code(error::bad_dn)) << bad;
        }
    }
}

TEST(crypto_ca, self_signed_ca_has_the_ios_key_usages_and_validity) {
    const authority ca = make_ca();
    X509* c = ca.cert.get();
    EXPECT_TRUE(is_self_signed(c));
    EXPECT_EQ(subject_string(c), "CN=ca-server,O=lab");
    EXPECT_EQ(serial_u64(c), 1u);
    EXPECT_EQ(not_before(c), test_epoch());
    EXPECT_EQ(not_after(c), test_epoch() + timers::days{1095});
    // Model §1 rule 1 / scep-wire §0.5.
    EXPECT_EQ(key_usage(c),
              KU_KEY_CERT_SIGN | KU_CRL_SIGN | KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
    EXPECT_EQ(X509_check_ca(c), 1);
    const int bc = X509_get_ext_by_NID(c, NID_basic_constraints, -1);
    ASSERT_GE(bc, 0);
    EXPECT_EQ(X509_EXTENSION_get_critical(X509_get_ext(c, bc)), 1);
    EXPECT_NE(X509_get0_subject_key_id(c), nullptr);
    EXPECT_NE(X509_get0_authority_key_id(c), nullptr);
    EXPECT_EQ(X509_get_signature_nid(c), NID_sha256WithRSAEncryption);
}

TEST(crypto_ca, hash_setting_selects_the_signature_algorithm) {
    const authority ca = make_ca("ca", "CN=ca-server", test_epoch(), timers::days{10},
                                 timers::hash_algorithm::sha512);
    EXPECT_EQ(X509_get_signature_nid(ca.cert.get()), NID_sha512WithRSAEncryption);
}

TEST(crypto_ca, shadow_ca_starts_at_the_current_not_after_with_a_new_key) {
    const authority ca = make_ca();
    const authority shadow = make_shadow(ca);
    EXPECT_EQ(subject_string(shadow.cert.get()), subject_string(ca.cert.get()));
    EXPECT_EQ(not_before(shadow.cert.get()), not_after(ca.cert.get()));
    EXPECT_FALSE(
        same_public_key(X509_get0_pubkey(shadow.cert.get()), X509_get0_pubkey(ca.cert.get())));
    EXPECT_TRUE(is_self_signed(shadow.cert.get()));
    EXPECT_EQ(key_usage(shadow.cert.get()), key_usage(ca.cert.get()));
}

TEST(crypto_issue, certificate_is_truncated_at_the_ca_not_after) {
    const authority ca = make_ca("ca", "CN=ca-server", test_epoch(), timers::days{100});
    const client c = make_client();
    issue_options o;
    // Rule 2: granted on day 50 with a 365-day lifetime ends with the CA on day 100.
    o.validity = timers::issued_validity(timers::days{365}, test_epoch() + timers::days{50},
                                         not_after(ca.cert.get()));
    o.serial = 2;
    const x509_ptr id = issue_certificate(c.csr.get(), ca.cert.get(), ca.key, o).value();
    EXPECT_EQ(not_before(id.get()), test_epoch() + timers::days{50});
    EXPECT_EQ(not_after(id.get()), test_epoch() + timers::days{100});
    // The guard clamps even an over-long validity.
    o.validity = {test_epoch() + timers::days{50}, test_epoch() + timers::days{500}};
    o.serial = 3;
    const x509_ptr clamped = issue_certificate(c.csr.get(), ca.cert.get(), ca.key, o).value();
    EXPECT_EQ(not_after(clamped.get()), test_epoch() + timers::days{100});
}

TEST(crypto_issue, end_entity_gets_key_usages_san_cdp_and_verifies_against_the_ca) {
    const authority ca = make_ca();
    csr_options csr;
    csr.dns_names = {"router1.lab.example"};
    csr.ip_addresses = {"192.0.2.1"};
    const client c = make_client("client1", "CN=router1,O=lab", "secret", csr);
    issue_options o;
    o.validity = {test_epoch(), test_epoch() + timers::days{365}};
    o.serial = 0x42;
    o.cdp_url = "http://10.0.0.1/cgi-bin/pkiclient.exe?operation=GetCRL,x";
    o.hash = timers::hash_algorithm::sha384;
    const x509_ptr id = issue_certificate(c.csr.get(), ca.cert.get(), ca.key, o).value();
    EXPECT_EQ(key_usage(id.get()), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
    EXPECT_EQ(X509_check_ca(id.get()), 0);
    EXPECT_EQ(subject_string(id.get()), "CN=router1,O=lab");
    EXPECT_EQ(issuer_string(id.get()), "CN=ca-server,O=lab");
    EXPECT_EQ(serial_hex(id.get()), "42");
    EXPECT_EQ(X509_get_signature_nid(id.get()), NID_sha384WithRSAEncryption);
    EXPECT_NE(ext_text(id.get(), NID_subject_alt_name).find("DNS:router1.lab.example"),
              std::string::npos);
    EXPECT_NE(ext_text(id.get(), NID_subject_alt_name).find("192.0.2.1"), std::string::npos);
    EXPECT_NE(ext_text(id.get(), NID_crl_distribution_points).find(o.cdp_url), std::string::npos);
    EXPECT_TRUE(same_public_key(X509_get0_pubkey(id.get()), c.key));
    EXPECT_EQ(X509_verify(id.get(), ca.key), 1);
    const std::array trusted{ca.cert.get()};
    EXPECT_TRUE(verify_signer_chain(id.get(), trusted, test_epoch() + timers::days{1}));
}

// Issue 12 §3: with attach_key = false the CSR's SubjectPublicKeyInfo is copied instead of
// re-encoded. The certificate must be the same bytes as X509_set_pubkey's, for RSA and for EC
// (whose algorithm carries the curve as a parameter), and its key the CSR's once parsed.
TEST(crypto_issue, a_copied_public_key_gives_the_same_certificate_as_set_pubkey) {
    const authority ca = make_ca();
    const auto spki = [](X509_PUBKEY* k) {
        unsigned char* der = nullptr;
        const int n = i2d_X509_PUBKEY(k, &der);
        bytes out(der, der + std::max(n, 0));
        OPENSSL_free(der);
        return out;
    };
    evp_pkey_ptr ec = generate_ec_key("P-384");
    for (EVP_PKEY* key : {fixture_key("client1"), ec.get()}) {
        const x509_req_ptr req = make_csr(key, "CN=copied,O=lab");
        issue_options o;
        o.validity = {test_epoch(), test_epoch() + timers::days{30}};
        o.serial = 0x77;
        const x509_ptr attached = issue_certificate(req.get(), ca.cert.get(), ca.key, o).value();
        o.attach_key = false;
        const x509_ptr copied = issue_certificate(req.get(), ca.cert.get(), ca.key, o).value();
        EXPECT_EQ(X509_get0_pubkey(copied.get()), nullptr);  // the documented trade
        EXPECT_EQ(spki(X509_get_X509_PUBKEY(copied.get())),
                  spki(X509_REQ_get_X509_PUBKEY(req.get())));
        // The CA key is RSA (PKCS#1 v1.5, deterministic): the whole DER, signature included.
        EXPECT_EQ(to_der(copied.get()), to_der(attached.get()));
        const x509_ptr parsed = x509_from_der(to_der(copied.get())).value();
        EXPECT_TRUE(same_public_key(X509_get0_pubkey(parsed.get()), key));
        EXPECT_EQ(X509_verify(parsed.get(), ca.key), 1);
        EXPECT_EQ(key_usage(parsed.get()), key == ec.get()
                                               ? KU_DIGITAL_SIGNATURE
                                               : KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
    }
}

TEST(crypto_issue, ra_profile_signs_and_encrypts_and_copies_no_san) {
    const authority ca = make_ca();
    csr_options csr;
    csr.dns_names = {"ra.lab.example"};
    const x509_req_ptr req = make_csr(fixture_key("ra"), "CN=ra", csr);
    issue_options o;
    o.validity = {test_epoch(), test_epoch() + timers::days{365}};
    o.serial = 9;
    o.profile = cert_profile::registration_authority;
    const x509_ptr ra = issue_certificate(req.get(), ca.cert.get(), ca.key, o).value();
    EXPECT_EQ(key_usage(ra.get()), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
    EXPECT_TRUE(ext_text(ra.get(), NID_subject_alt_name).empty());
    o.serial = 0;
    EXPECT_FALSE(
        issue_certificate(req.get(), ca.cert.get(), ca.key, o));  // serial 0 is never valid
}

TEST(crypto_crl, lists_revoked_serials_and_verifies) {
    const authority ca = make_ca();
    const std::array revoked{revoked_entry{7, test_epoch() + timers::days{2}, std::nullopt},
                             revoked_entry{3, test_epoch() + timers::days{1}, std::nullopt}};
    const x509_crl_ptr crl =
        make_crl(ca.cert.get(), ca.key, revoked, test_epoch() + timers::days{3},
                 test_epoch() + timers::days{3} + timers::hours{168}, 12,
                 timers::hash_algorithm::sha256)
            .value();
    EXPECT_TRUE(crl_lists(crl.get(), 3));
    EXPECT_TRUE(crl_lists(crl.get(), 7));
    EXPECT_FALSE(crl_lists(crl.get(), 4));
    EXPECT_EQ(X509_CRL_verify(crl.get(), ca.key), 1);
    EXPECT_EQ(from_asn1_time(X509_CRL_get0_nextUpdate(crl.get())).value(),
              test_epoch() + timers::days{10});
    int crit = 0;
    asn1_integer_ptr number{static_cast<ASN1_INTEGER*>(
        X509_CRL_get_ext_d2i(crl.get(), NID_crl_number, &crit, nullptr))};
    ASSERT_TRUE(number);
    EXPECT_EQ(serial_u64(number.get()), 12u);
    // DER/PEM round trip.
    auto back = x509_crl_from_der(to_der(crl.get()));
    ASSERT_TRUE(back);
    EXPECT_TRUE(crl_lists(back->get(), 7));
    EXPECT_TRUE(x509_crl_from_pem(to_pem(crl.get())));
}

TEST(crypto_key_storage, encrypted_key_round_trips_and_a_wrong_passphrase_is_reported) {
    EVP_PKEY* key = fixture_key("ca");
    const std::string pem = encrypt_private_key_pem(key, "correct horse");
    EXPECT_NE(pem.find("BEGIN ENCRYPTED PRIVATE KEY"), std::string::npos);
    auto back = decrypt_private_key_pem(pem, "correct horse");
    ASSERT_TRUE(back);
    EXPECT_TRUE(same_public_key(back->get(), key));
    EXPECT_EQ(decrypt_private_key_pem(pem, "wrong").error(),
              make_error_code(error::wrong_passphrase));
    EXPECT_EQ(decrypt_private_key_pem(pem, "").error(), make_error_code(error::wrong_passphrase));
    EXPECT_EQ(decrypt_private_key_pem("not a key", "x").error(), make_error_code(error::bad_key));
    // An unencrypted key loaded without a passphrase prompt.
    EXPECT_TRUE(private_key_from_pem(private_key_to_pem(key)));
    EXPECT_FALSE(private_key_from_pem(pem));  // encrypted: never prompts, just fails
}

TEST(openssl_layer, der_and_pem_round_trip_and_reject_trailing_garbage) {
    const authority ca = make_ca();
    bytes der = to_der(ca.cert.get());
    auto back = x509_from_der(der);
    ASSERT_TRUE(back);
    EXPECT_EQ(X509_cmp(back->get(), ca.cert.get()), 0);
    auto pem = x509_from_pem(to_pem(ca.cert.get()));
    ASSERT_TRUE(pem);
    EXPECT_EQ(X509_cmp(pem->get(), ca.cert.get()), 0);
    const authority ra = make_ra(ca);
    auto chain = x509_chain_from_pem(to_pem(ca.cert.get()) + to_pem(ra.cert.get()));
    ASSERT_TRUE(chain);
    EXPECT_EQ(chain->size(), 2u);
    EXPECT_FALSE(x509_chain_from_pem("nothing"));

    der.push_back(0);
    EXPECT_EQ(x509_from_der(der).error(), make_error_code(error::malformed_der));
    der.resize(der.size() / 2);
    EXPECT_FALSE(x509_from_der(der));
    EXPECT_FALSE(x509_from_der({}));
    EXPECT_FALSE(x509_from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"));
    const client c = make_client();
    EXPECT_TRUE(x509_req_from_pem(to_pem(c.csr.get())));
    EXPECT_TRUE(x509_req_from_der(to_der(c.csr.get())));
}

TEST(openssl_layer, time_round_trips_through_utc_time_and_generalized_time) {
    for (const time_point t : {test_epoch(), test_epoch() + timers::days{365 * 25},
                               time_point{date::sys_days{date::year{1999} / 12 / 31}}}) {
        const asn1_time_ptr a = to_asn1_time(t);
        EXPECT_EQ(from_asn1_time(a.get()).value(), t);
    }
    // 2050 and later must be GeneralizedTime (RFC 5280 §4.1.2.5).
    const asn1_time_ptr late = to_asn1_time(time_point{date::sys_days{date::year{2055} / 3 / 1}});
    EXPECT_EQ(ASN1_STRING_type(late.get()), V_ASN1_GENERALIZEDTIME);
    const asn1_time_ptr early = to_asn1_time(test_epoch());
    EXPECT_EQ(ASN1_STRING_type(early.get()), V_ASN1_UTCTIME);
    // Milliseconds are truncated.
    EXPECT_EQ(from_asn1_time(to_asn1_time(test_epoch() + timers::duration{999}).get()).value(),
              test_epoch());
}

TEST(openssl_layer, fingerprints_have_the_ios_layout) {
    const authority ca = make_ca();
    const std::string md5 = md5_fingerprint(ca.cert.get());
    EXPECT_TRUE(is_ios_fingerprint(md5, 4)) << md5;
    std::string compact = md5;
    std::erase(compact, ' ');
    std::string lower = hex_fingerprint(ca.cert.get(), EVP_md5());
    for (char& ch : lower) {
        ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    }
    EXPECT_EQ(compact, lower);
    EXPECT_EQ(sha1_fingerprint(ca.cert.get()).size(), 40u);
    EXPECT_EQ(sha256_fingerprint(ca.cert.get()).size(), 64u);
    EXPECT_TRUE(is_ios_fingerprint(ios_fingerprint(ca.cert.get(), EVP_sha1()), 5));
    EXPECT_FALSE(is_ios_fingerprint("cf2c23d1 560F25DB 22E9D10F E595A6D6", 4));
    EXPECT_EQ(to_hex(bytes{0x00, 0xab, 0x10}), "00ab10");
}

TEST(openssl_layer, legacy_provider_enables_single_des) {
    load_providers(false);
    load_providers(true);
    EXPECT_TRUE(legacy_provider_loaded());
    EVP_CIPHER* des = EVP_CIPHER_fetch(nullptr, "DES-CBC", nullptr);
    EXPECT_NE(des, nullptr);
    EVP_CIPHER_free(des);
    EXPECT_TRUE(is_legacy_algorithm(NID_des_cbc));
    EXPECT_TRUE(is_legacy_algorithm(NID_md5));
    EXPECT_FALSE(is_legacy_algorithm(NID_des_ede3_cbc));
    EXPECT_EQ(algorithm_name(NID_aes_128_cbc), "AES-128-CBC");
}

TEST(openssl_layer, error_category_names_every_error) {
    EXPECT_STREQ(scep_category().name(), "scep");
    for (int e = 0; e <= static_cast<int>(error::internal); ++e) {
        EXPECT_FALSE(make_error_code(static_cast<error>(e)).message().empty()) << e;
    }
    const std::error_code ec = error::bad_signature;  // is_error_code_enum
    EXPECT_EQ(ec.category(), scep_category());
}

}  // namespace
}  // namespace pkisim::scep
