// An IOS-like SCEP client over HTTP (Boost.Beast): what a `crypto pki trustpoint` does on the
// wire (ios-pki-model.md §2), for the RA's upstream requests (issue 4 §2), the storm tests and
// `pkisim client`.
//
//   using namespace pkisim::scep;
//   scep_client c{ios_client_options("http://127.0.0.1:8080", "TP")};  // HTTP/1.0, IOS UA, GET
//   auto caps = c.get_ca_caps().value();
//   auto ca = c.get_ca_cert().value();                  // CA, or CA + RA picked by keyUsage
//   auto r = c.enroll({.key = key.get(), .subject = "CN=r1", .challenge = "secret"}, caps, ca,
//                     {.interval = std::chrono::seconds{60}, .max_polls = 10});
//   if (r && r->status == pki_status::success) use(r->cert);
//   auto next = c.get_next_ca_cert(ca);                 // 404 -> next->available == false
//
// Every call is synchronous, opens one TCP connection (as IOS does), and runs its own
// io_context: a scep_client is immutable after construction and can be shared by a thread pool.
// Results are tl::expected<T, client_failure>; nothing throws on what the server sends.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "pkisim/scep/codec.hpp"
#include "pkisim/scep/openssl.hpp"

namespace pkisim::scep {

// What went wrong, in the classes a caller acts on differently (certmonger's scep-submit makes
// the same split: unreachable / rejected / bad answer).
enum class client_error {
    bad_url = 1,      // the URL is not http://host[:port][/path]
    resolve_failed,   // host name not found
    connect_refused,  // RST: nothing listens (or the listener is closed while "deaf")
    connect_timeout,  // no answer to SYN within connect_timeout (IOS deaf listener, §3)
    read_timeout,     // connected, but no complete answer within read_timeout
    network,          // any other socket error (reset mid-answer, ...)
    http_status,      // a non-2xx answer other than the documented ones (status kept)
    scep_failure,     // CertRep FAILURE: fail_info (+ failInfoText)
    bad_response,     // 200 but the body is not what the operation returns
    bad_request,      // we could not build the request (bad subject, no CA certificate, ...)
};
std::string_view to_string(client_error e) noexcept;

struct client_failure {
    client_error code = client_error::network;
    unsigned http_status = 0;          // when an HTTP answer was read
    std::optional<fail_info> failure;  // scep_failure
    std::string text;                  // details: socket error, failInfoText, parse error
    std::string message() const;       // one line for logs and the CLI
};
template <typename T>
using client_result = tl::expected<T, client_failure>;

// IOS's User-Agent (micromdm/scep#211 capture; ios-pki-model.md §2).
inline constexpr std::string_view ios_user_agent = "Mozilla/4.0 (compatible; MSIE 5.0; Cisco PKI)";

enum class pki_operation_method {
    automatic,  // POST when GetCACaps lists POSTPKIOperation or SCEPStandard (RFC 8894 §4.1)
    get,        // always GET (IOS, certmonger: scep-wire §0.8)
    post,
};

struct client_options {
    // http://host[:port][/path]. IOS appends /pkiclient.exe to the path; no path = /cgi-bin
    // (ios-pki-model.md §2). A path that already ends in pkiclient.exe is used as is.
    std::string url;
    // Use the URL's path as is (micromdm scepserver serves only /scep).
    bool exact_path = false;
    int http_version = 11;  // 10 = HTTP/1.0 like IOS, 11 = HTTP/1.1
    std::string user_agent = "pkisim-client";
    pki_operation_method method = pki_operation_method::automatic;
    // IOS: the GET message= base64 carries %0A line breaks every 64 characters
    // (smallstep/certificates#2100). Otherwise one unbroken, URL-escaped base64 string.
    bool ios_line_breaks = false;
    std::chrono::milliseconds connect_timeout{10'000};  // model §2.5: IOS's 10 s assumption
    std::chrono::milliseconds read_timeout{30'000};     // from connected to the end of the body
    // message= of GetCACaps/GetCACert/GetNextCACert: IOS sends the trustpoint label.
    std::string ca_identifier;
    // Single DES and MD5 (RFC 8894 §2.9 MUST NOT): accept them in replies (micromdm scepserver
    // answers in DES) and send them when GetCACaps advertises nothing. Loads the OpenSSL legacy
    // provider on construction.
    bool legacy_crypto = false;
    std::size_t max_body = 1024 * 1024;
    // Clock for the self-signed signer's validity; injectable for tests.
    std::function<time_point()> now;
};
// HTTP/1.0, the IOS User-Agent, GET with %0A line breaks, message=trustpoint.
client_options ios_client_options(std::string url, std::string trustpoint);

// GetCACaps (RFC 8894 §3.5.2). Keywords as sent; lookups ignore case (clients SHOULD).
struct ca_caps {
    std::vector<std::string> keywords;
    unsigned http_status = 200;  // an HTTP error means "nothing supported" (RFC 8894 §3.5.2)
    bool has(std::string_view keyword) const;
    bool post_supported() const { return has("POSTPKIOperation") || has("SCEPStandard"); }
    // IOS-like choice: AES-128-CBC and SHA-256 when advertised (SCEPStandard implies both);
    // otherwise 3DES and SHA-1; with `legacy` and nothing advertised, DES-CBC and MD5 as old
    // IOS images do.
    int cipher_nid(bool legacy) const;
    int digest_nid(bool legacy) const;
};

// GetCACert: the CA, or CA + RA/intermediates (scep-wire §1.6).
struct ca_certs {
    std::string content_type;
    std::vector<x509_ptr> certs;  // as received
    x509_ptr ca;                  // the issuing CA: CA:TRUE (self-signed preferred)
    // Whom requests are encrypted to: a non-CA certificate with keyEncipherment (RA) when
    // present, as jscep and certmonger (CM_PKCS7_LEAF_PREFER_ENCRYPT) choose; else the CA.
    x509_ptr encryption;
    // Who signs CertReps: a non-CA certificate with digitalSignature, else the CA.
    x509_ptr signer;
    bool ra_mode() const { return certs.size() > 1 && encryption.get() != ca.get(); }
    std::vector<X509*> all() const;
};

// GetNextCACert (RFC 8894 §4.7.1). 404 is not an error: it is how IOS says "no rollover
// certificate yet" (ios-pki-model.md §2.3), and the shadow state machine retries on it.
struct next_ca_result {
    bool available = false;
    unsigned http_status = 0;
    x509_ptr signer;              // current CA/RA certificate that signed it (verified)
    std::vector<x509_ptr> certs;  // the new CA (+RA) certificates
};

struct poll_options {
    std::chrono::milliseconds interval{60'000};  // IOS `enrollment retry period`, 1 minute
    unsigned max_polls = 10;                     // CertPolls after the first PENDING; 0 = none
    // Injectable so tests do not wait; default std::this_thread::sleep_for.
    std::function<void(std::chrono::milliseconds)> sleep;
};

struct enroll_request {
    EVP_PKEY* key = nullptr;  // the key to certify (CSR key, and the self-signed signer's key)
    std::string subject;      // "CN=r1,O=lab" (parse_dn syntax)
    std::optional<std::string> challenge;
    std::vector<std::string> dns_names;
    std::vector<std::string> ip_addresses;
    // Renewal (RFC 8894 §2.3): sign with an existing certificate and its key instead of a
    // self-signed certificate; the reply is encrypted to it.
    X509* renew_cert = nullptr;
    EVP_PKEY* renew_key = nullptr;
    // Renewal as PKCSReq(19) signed with the existing certificate (sscep, jscep, OpenXPKI;
    // scep-wire §0.12) instead of RenewalReq(17).
    bool renewal_as_pkcs_req = false;
    // RA forwarding (issue 4 §2): send this CSR (the client's, with its challenge) unchanged as
    // a PKCSReq signed with the RA certificate; `key`, `subject`, `challenge` and the SAN lists
    // are then unused, and the CertRep is decrypted with the RA key.
    X509_REQ* forward_csr = nullptr;
    X509* ra_cert = nullptr;
    EVP_PKEY* ra_key = nullptr;
    // Empty: hex SHA-1 of the (CSR's) public key (most clients; scep-wire §0.11).
    std::string transaction_id;
};

// Enough to poll later (also across processes: the CLI rebuilds it from key + subject).
struct pending_enrollment {
    std::string transaction_id;
    x509_ptr signer_cert;  // the reply is encrypted to it
    evp_pkey_ptr signer_key;
    x509_name_ptr subject;  // CSR subject: CertPoll's IssuerAndSubject
    evp_pkey_ptr key;       // the CSR key: picks the issued certificate out of the reply
    int cipher_nid = 0;
    int digest_nid = 0;
};

struct enroll_result {
    pki_status status = pki_status::pending;  // success or pending (failure is an error)
    std::string transaction_id;
    x509_ptr cert;                // SUCCESS: the issued certificate (leaf)
    std::vector<x509_ptr> chain;  // other certificates of the reply's content
    unsigned polls = 0;           // CertPolls sent
    int cipher_nid = 0;
    int digest_nid = 0;
    pending_enrollment pending;  // to resume polling
};

// A certificate + key we already hold (for GetCRL / GetCert, which are signed by the client).
struct client_identity {
    X509* cert = nullptr;
    EVP_PKEY* key = nullptr;
};

class scep_client {
  public:
    explicit scep_client(client_options options);

    const client_options& options() const { return options_; }
    const std::string& host() const { return host_; }  // from the URL
    const std::string& port() const { return port_; }
    // The request target for an operation: "/cgi-bin/pkiclient.exe?operation=GetCACert&message=TP".
    std::string target(std::string_view operation, std::string_view message) const;

    client_result<ca_caps> get_ca_caps() const;
    client_result<ca_certs> get_ca_cert() const;
    client_result<next_ca_result> get_next_ca_cert(const ca_certs& current) const;

    // PKCSReq (or RenewalReq), then CertPoll while PENDING up to poll.max_polls.
    // SUCCESS and PENDING (polls exhausted) are values; FAILURE is client_error::scep_failure.
    client_result<enroll_result> enroll(const enroll_request& request, const ca_caps& caps,
                                        const ca_certs& ca, const poll_options& poll = {}) const;
    // CertPoll/GetCertInitial (message type 20) with the same transactionID until issued,
    // rejected or max_polls (here: every poll counts, the first one is sent at once).
    client_result<enroll_result> poll(const pending_enrollment& pending, const ca_caps& caps,
                                      const ca_certs& ca, const poll_options& poll) const;
    // Rebuilds the pending state of an enroll() done earlier with the same key and subject.
    client_result<pending_enrollment> resume(EVP_PKEY* key, std::string_view subject,
                                             const ca_caps& caps,
                                             std::string transaction_id = {}) const;

    // GetCRL for the CA of `of` (IssuerAndSerialNumber of a certificate, RFC 8894 §3.3.4).
    client_result<x509_crl_ptr> get_crl(const client_identity& me, X509* of, const ca_caps& caps,
                                        const ca_certs& ca) const;
    // GetCert (RFC 8894 §3.3.3): the certificate with `serial` issued by the CA.
    client_result<x509_ptr> get_cert(const client_identity& me, const ASN1_INTEGER* serial,
                                     const ca_caps& caps, const ca_certs& ca) const;

    // Low level: one HTTP exchange. For tests and tools.
    struct http_answer {
        unsigned status = 0;
        std::string content_type;
        std::string body;
    };
    client_result<http_answer> http_get(const std::string& target) const;
    client_result<http_answer> http_post(const std::string& target, const bytes& body) const;
    // Sends a pkiMessage (GET or POST per options and caps) and decodes the CertRep.
    client_result<cert_rep> pki_operation(const bytes& message, const ca_caps& caps,
                                          const ca_certs& ca, X509* recipient_cert,
                                          EVP_PKEY* recipient_key) const;

  private:
    client_result<http_answer> exchange(bool post, const std::string& target,
                                        const bytes* body) const;
    client_result<enroll_result> poll_loop(const pending_enrollment& pending, const ca_caps& caps,
                                           const ca_certs& ca, const poll_options& poll,
                                           bool first_poll_at_once, enroll_result result) const;

    client_options options_;
    std::string host_;
    std::string port_;
    std::string path_;  // ".../pkiclient.exe"
};

// Builds a ca_certs from certificates (picks ca / encryption / signer by keyUsage). Error when
// empty.
client_result<ca_certs> classify_ca_certs(std::vector<x509_ptr> certs, std::string content_type);

// IOS-style GET encoding of a pkiMessage: standard base64, `+ / =` escaped, and with
// `line_breaks` a %0A after every 64 base64 characters.
std::string encode_get_message(byte_view der, bool line_breaks);

}  // namespace pkisim::scep
