// `pkisim client URL OPERATION ...`: an IOS-like SCEP client for the lab (scep_client in
// scep_server/include/pkisim/scep/client.hpp).
// Exit codes (like certmonger's scep-submit): 0 ok / issued, 1 pending, rejected (SCEP FAILURE)
// or no rollover certificate (GetNextCACert 404), 2 usage, 3 server unreachable (refused,
// timeout, host not found), 4 the server answered with an HTTP error or something unreadable.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "commands.hpp"
#include "pkisim/scep/client.hpp"
#include "pkisim/scep/crypto.hpp"

namespace pkisim::cli {

namespace {

namespace fs = std::filesystem;
using namespace pkisim::scep;

enum exit_status : int { ok = 0, not_done = 1, usage = 2, unreachable = 3, bad_answer = 4 };

struct client_cli_options {
    std::string url;
    std::string operation;
    std::string out = ".";
    std::string key;
    std::string new_key;
    std::string cert;
    std::string ca;
    std::string cn;
    std::string subject;
    std::string challenge_file;
    std::vector<std::string> dns;
    bool ios = false;
    bool post = false;
    bool get = false;
    bool http10 = false;
    bool exact_path = false;
    bool legacy_crypto = false;
    bool renewal_pkcs_req = false;
    double poll_interval = 60.0;
    unsigned max_polls = 0;
    double connect_timeout = 10.0;
    double read_timeout = 30.0;
    std::string trustpoint;
    std::string transaction_id;
};

struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string read_text(const std::string& path) {
    std::ifstream in{path, std::ios::binary};
    if (!in)
        throw usage_error("cannot read " + path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// Private keys and certificates: written whole, keys 0600 from the start (no umask window).
void write_file(const fs::path& path, std::string_view text, bool secret) {
    const int fd =
        ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, secret ? 0600 : 0644);
    if (fd < 0)
        throw usage_error(fmt::format("cannot write {}: {}", path.string(), std::strerror(errno)));
    if (secret)
        ::fchmod(fd, 0600);
    std::size_t done = 0;
    while (done < text.size()) {
        auto n = ::write(fd, text.data() + done, text.size() - done);
        if (n <= 0) {
            ::close(fd);
            throw usage_error("cannot write " + path.string());
        }
        done += static_cast<std::size_t>(n);
    }
    ::close(fd);
}

// --key FILE: loaded, or a new RSA 2048 key written 0600 when the file does not exist.
evp_pkey_ptr load_or_generate_key(const std::string& path, bool& generated) {
    generated = false;
    if (path.empty())
        throw usage_error("--key FILE is required for this operation");
    if (fs::exists(path)) {
        auto k = private_key_from_pem(read_text(path));
        if (!k)
            throw usage_error(fmt::format("{}: not an unencrypted PEM private key", path));
        return std::move(*k);
    }
    auto k = generate_rsa_key(2048);
    if (auto dir = fs::path{path}.parent_path(); !dir.empty())
        fs::create_directories(dir);
    write_file(path, private_key_to_pem(k.get()), true);
    generated = true;
    return k;
}

// The challenge password never comes from the command line (it would show in ps).
std::optional<std::string> read_challenge(const client_cli_options& o) {
    if (!o.challenge_file.empty()) {
        std::string s = read_text(o.challenge_file);
        auto nl = s.find_first_of("\r\n");
        if (nl != std::string::npos)
            s.resize(nl);
        return s;
    }
    if (const char* env = std::getenv("PKISIM_CHALLENGE"))
        return std::string{env};
    return std::nullopt;
}

std::string subject_of(const client_cli_options& o) {
    if (!o.subject.empty())
        return o.subject;
    if (!o.cn.empty())
        return "CN=" + o.cn;
    return {};
}

int exit_for(const client_failure& f) {
    switch (f.code) {
        case client_error::bad_url:
        case client_error::bad_request:
            return usage;
        case client_error::resolve_failed:
        case client_error::connect_refused:
        case client_error::connect_timeout:
        case client_error::read_timeout:
        case client_error::network:
            return unreachable;
        case client_error::scep_failure:
            return not_done;
        case client_error::http_status:
        case client_error::bad_response:
            return bad_answer;
    }
    return bad_answer;
}

int report(std::string_view what, const client_failure& f) {
    std::cout << what << ": " << f.message() << '\n';
    return exit_for(f);
}

std::string describe(X509* cert) {
    return fmt::format("'{}' serial {} valid {} to {}", subject_string(cert), serial_hex(cert),
                       timers::to_iso8601(not_before(cert)), timers::to_iso8601(not_after(cert)));
}

std::string pem_of(const std::vector<x509_ptr>& certs) {
    std::string s;
    for (const auto& c : certs)
        s += to_pem(c.get());
    return s;
}

// GetCACert from the server, or the certificates of --ca FILE (IOS keeps the CA it
// authenticated; GetNextCACert is verified against it).
client_result<ca_certs> current_ca(const scep_client& c, const client_cli_options& o) {
    if (o.ca.empty())
        return c.get_ca_cert();
    auto chain = x509_chain_from_pem(read_text(o.ca));
    if (!chain)
        throw usage_error(o.ca + ": no PEM certificate");
    return classify_ca_certs(std::move(*chain), "file " + o.ca);
}

int run_client(const client_cli_options& o) {
    client_options co = o.ios ? ios_client_options(o.url, o.trustpoint) : client_options{};
    co.url = o.url;
    co.exact_path = o.exact_path;
    if (!o.trustpoint.empty())
        co.ca_identifier = o.trustpoint;
    if (o.http10)
        co.http_version = 10;
    if (o.post)
        co.method = pki_operation_method::post;
    if (o.get)
        co.method = pki_operation_method::get;
    co.legacy_crypto = o.legacy_crypto;
    co.connect_timeout = std::chrono::milliseconds{static_cast<long>(o.connect_timeout * 1000)};
    co.read_timeout = std::chrono::milliseconds{static_cast<long>(o.read_timeout * 1000)};
    std::unique_ptr<scep_client> cp;
    try {
        cp = std::make_unique<scep_client>(co);
    } catch (const std::invalid_argument& e) {
        throw usage_error(e.what());
    }
    const scep_client& c = *cp;
    const fs::path out{o.out};
    if (o.operation != "getcacaps")
        fs::create_directories(out);

    if (o.operation == "getcacaps") {
        auto caps = c.get_ca_caps();
        if (!caps)
            return report("GetCACaps", caps.error());
        std::string list;
        for (const auto& k : caps->keywords)
            list += (list.empty() ? "" : " ") + k;
        if (caps->http_status != 200) {
            std::cout << fmt::format("GetCACaps: HTTP {} (treated as no capabilities)\n",
                                     caps->http_status);
        } else {
            std::cout << "GetCACaps: " << (list.empty() ? "(empty)" : list) << '\n';
        }
        std::cout << fmt::format(
            "would use {} / {} for PKIOperation by {}\n",
            algorithm_name(caps->cipher_nid(o.legacy_crypto)),
            algorithm_name(caps->digest_nid(o.legacy_crypto)),
            (o.post || (!o.get && !o.ios && caps->post_supported())) ? "POST" : "GET");
        return ok;
    }

    if (o.operation == "getca") {
        auto ca = c.get_ca_cert();
        if (!ca)
            return report("GetCACert", ca.error());
        write_file(out / "ca.pem", to_pem(ca->ca.get()), false);
        write_file(out / "cachain.pem", pem_of(ca->certs), false);
        std::cout << fmt::format("GetCACert: {}, {} certificate(s); CA {} MD5 {}\n",
                                 ca->content_type.empty() ? "no Content-Type" : ca->content_type,
                                 ca->certs.size(), describe(ca->ca.get()),
                                 md5_fingerprint(ca->ca.get()));
        if (ca->ra_mode()) {
            write_file(out / "ra.pem", to_pem(ca->encryption.get()), false);
            std::cout << fmt::format("RA (encryption) {}; written to {}\n",
                                     describe(ca->encryption.get()), (out / "ra.pem").string());
        } else {
            std::cout << fmt::format("written to {}\n", (out / "ca.pem").string());
        }
        return ok;
    }

    if (o.operation == "getnextca") {
        auto ca = current_ca(c, o);
        if (!ca)
            return report("GetCACert", ca.error());
        auto next = c.get_next_ca_cert(*ca);
        if (!next)
            return report("GetNextCACert", next.error());
        if (!next->available) {
            std::cout << fmt::format(
                "GetNextCACert: {} Not Found (no rollover CA certificate yet)\n",
                next->http_status);
            return not_done;
        }
        write_file(out / "nextca.pem", pem_of(next->certs), false);
        std::cout << fmt::format("GetNextCACert: rollover CA {} (signed by the current CA)\n",
                                 describe(next->certs.front().get()));
        std::cout << fmt::format("{} certificate(s) written to {}\n", next->certs.size(),
                                 (out / "nextca.pem").string());
        return ok;
    }

    if (o.operation == "getcrl") {
        if (o.cert.empty() || o.key.empty())
            throw usage_error("getcrl needs --cert and --key");
        auto key = private_key_from_pem(read_text(o.key));
        if (!key)
            throw usage_error(o.key + ": not a PEM private key");
        auto cert = x509_from_pem(read_text(o.cert));
        if (!cert)
            throw usage_error(o.cert + ": not a PEM certificate");
        auto caps = c.get_ca_caps();
        if (!caps)
            return report("GetCACaps", caps.error());
        auto ca = current_ca(c, o);
        if (!ca)
            return report("GetCACert", ca.error());
        auto crl = c.get_crl({cert->get(), key->get()}, cert->get(), *caps, *ca);
        if (!crl)
            return report("GetCRL", crl.error());
        write_file(out / "ca.crl", to_pem(crl->get()), false);
        std::cout << fmt::format("GetCRL: {} revoked certificate(s); written to {}\n",
                                 std::max(0, sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl->get()))),
                                 (out / "ca.crl").string());
        return ok;
    }

    // enroll / renew / poll
    bool generated = false;
    const bool renew = o.operation == "renew";
    evp_pkey_ptr old_key;
    x509_ptr old_cert;
    evp_pkey_ptr key;
    std::string subject = subject_of(o);
    if (renew) {
        if (o.cert.empty() || o.key.empty())
            throw usage_error("renew needs --cert and --key");
        auto k = private_key_from_pem(read_text(o.key));
        if (!k)
            throw usage_error(o.key + ": not a PEM private key");
        old_key = std::move(*k);
        auto cert = x509_from_pem(read_text(o.cert));
        if (!cert)
            throw usage_error(o.cert + ": not a PEM certificate");
        old_cert = std::move(*cert);
        if (subject.empty())
            subject = subject_string(old_cert.get());
        // IOS `auto-enroll ... regenerate` = a new key; without it the key is reused.
        key = o.new_key.empty() ? share(old_key.get()) : load_or_generate_key(o.new_key, generated);
    } else {
        if (subject.empty())
            throw usage_error(o.operation + " needs --cn or --subject");
        key = load_or_generate_key(o.key, generated);
    }
    if (generated) {
        std::cout << fmt::format("generated RSA 2048 key {}\n", renew ? o.new_key : o.key);
    }

    auto caps = c.get_ca_caps();
    if (!caps)
        return report("GetCACaps", caps.error());
    auto ca = current_ca(c, o);
    if (!ca)
        return report("GetCACert", ca.error());
    write_file(out / "ca.pem", to_pem(ca->ca.get()), false);

    poll_options po;
    po.interval = std::chrono::milliseconds{static_cast<long>(o.poll_interval * 1000)};
    po.max_polls = o.max_polls;

    client_result<enroll_result> r;
    std::string op_name;
    if (o.operation == "poll") {
        op_name = "CertPoll";
        auto pending = c.resume(key.get(), subject, *caps, o.transaction_id);
        if (!pending)
            return report(op_name, pending.error());
        if (po.max_polls == 0)
            po.max_polls = 1;
        r = c.poll(*pending, *caps, *ca, po);
    } else {
        enroll_request req;
        req.key = key.get();
        req.subject = subject;
        req.challenge = read_challenge(o);
        req.dns_names = o.dns;
        req.transaction_id = o.transaction_id;
        if (renew) {
            req.renew_cert = old_cert.get();
            req.renew_key = old_key.get();
            req.renewal_as_pkcs_req = o.renewal_pkcs_req;
            op_name = o.renewal_pkcs_req ? "PKCSReq (renewal)" : "RenewalReq";
        } else {
            op_name = "PKCSReq";
        }
        r = c.enroll(req, *caps, *ca, po);
    }
    if (!r)
        return report(op_name, r.error());
    std::string algs =
        fmt::format("{}/{}", algorithm_name(r->cipher_nid), algorithm_name(r->digest_nid));
    if (r->polls > 0)
        algs += fmt::format(", {} poll{}", r->polls, r->polls == 1 ? "" : "s");
    if (r->status == pki_status::pending) {
        std::cout << fmt::format("{}: PENDING, transactionID {} ({})\n", op_name, r->transaction_id,
                                 algs);
        std::cout << fmt::format("poll later: pkisim client {} poll --key {} --subject '{}'\n",
                                 o.url, renew && !o.new_key.empty() ? o.new_key : o.key, subject);
        return not_done;
    }
    const fs::path cert_path = out / "cert.pem";
    std::string pem = to_pem(r->cert.get());
    write_file(cert_path, pem, false);
    std::cout << fmt::format("{}: issued {} ({})\n", op_name, describe(r->cert.get()), algs);
    std::cout << fmt::format("written to {}\n", cert_path.string());
    return ok;
}

}  // namespace

void add_client_command(CLI::App& app, int& exit_code) {
    auto o = std::make_shared<client_cli_options>();
    auto* cmd = app.add_subcommand(
        "client",
        "IOS-like SCEP client: GetCACaps, GetCACert, GetNextCACert, enroll, renew, poll, GetCRL");
    cmd->add_option("url", o->url,
                    "SCEP URL http://HOST[:PORT][/PATH]; /pkiclient.exe is appended as IOS "
                    "does, no path = /cgi-bin")
        ->required();
    cmd->add_option("operation", o->operation,
                    "getcacaps | getca | getnextca | enroll | renew | poll | getcrl")
        ->required()
        ->check(CLI::IsMember(
            {"getcacaps", "getca", "getnextca", "enroll", "renew", "poll", "getcrl"}));
    cmd->add_option("--out", o->out, "Folder for ca.pem, ra.pem, nextca.pem, cert.pem, ca.crl")
        ->capture_default_str();
    cmd->add_option("--key", o->key,
                    "PEM private key (enroll: generated RSA 2048, mode 0600, if missing)");
    cmd->add_option(
        "--new-key", o->new_key,
        "renew: a new key (IOS `regenerate`; generated if missing); default reuse --key");
    cmd->add_option("--cert", o->cert, "PEM certificate (renew: the one to renew; getcrl)");
    cmd->add_option("--ca", o->ca, "PEM CA (+RA) certificates to use instead of asking GetCACert");
    cmd->add_option("--cn", o->cn, "Subject common name (shortcut for --subject CN=...)");
    cmd->add_option("--subject", o->subject, "Subject DN, e.g. 'CN=r1,O=lab'");
    cmd->add_option("--dns", o->dns, "subjectAltName dNSName (repeatable)");
    cmd->add_option("--challenge-file", o->challenge_file,
                    "File whose first line is the challenge password (else env "
                    "PKISIM_CHALLENGE; never on the command line)");
    cmd->add_flag("--ios", o->ios,
                  "Behave like IOS: HTTP/1.0, User-Agent 'Mozilla/4.0 (compatible; MSIE 5.0; "
                  "Cisco PKI)', GET PKIOperation with %0A line breaks");
    cmd->add_flag("--post", o->post, "PKIOperation by POST (default: POST if GetCACaps allows)");
    cmd->add_flag("--get", o->get, "PKIOperation by GET");
    cmd->add_flag("--exact-path", o->exact_path,
                  "Use the URL path as given, without appending /pkiclient.exe (micromdm "
                  "scepserver serves http://HOST:PORT/scep)");
    cmd->add_flag("--http10", o->http10, "Use HTTP/1.0 (implied by --ios)");
    cmd->add_flag("--legacy-crypto", o->legacy_crypto,
                  "Allow single DES and MD5 (OpenSSL legacy provider); needed for replies from "
                  "micromdm scepserver");
    cmd->add_flag("--renewal-pkcsreq", o->renewal_pkcs_req,
                  "renew: send PKCSReq signed with the old certificate instead of RenewalReq");
    cmd->add_option("--poll-interval", o->poll_interval,
                    "Seconds between CertPolls while PENDING (IOS enrollment retry period)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--max-polls", o->max_polls,
                    "CertPolls before giving up with exit 1 (enroll default 0: no polling; "
                    "poll: at least 1)")
        ->capture_default_str();
    cmd->add_option("--connect-timeout", o->connect_timeout, "Seconds")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--timeout", o->read_timeout, "Seconds for the whole answer once connected")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--trustpoint", o->trustpoint,
                    "CA identifier sent as message= (IOS sends the trustpoint label)");
    cmd->add_option("--transaction-id", o->transaction_id,
                    "transactionID (default: hex SHA-1 of the public key)");
    cmd->footer(
        "Examples:\n"
        "  pkisim client http://127.0.0.1:8080 getcacaps\n"
        "  pkisim client http://127.0.0.1:8080 getca --out tp\n"
        "  PKISIM_CHALLENGE=secret pkisim client http://127.0.0.1:8080 enroll --key tp/r1.key "
        "--cn r1 --out tp --max-polls 5 --poll-interval 60\n"
        "  pkisim client http://127.0.0.1:8080 renew --cert tp/cert.pem --key tp/r1.key --out tp\n"
        "  pkisim client http://127.0.0.1:8080 getnextca --ios --trustpoint TP --out tp\n"
        "Exit codes: 0 ok/issued, 1 pending, rejected or no rollover certificate (404), 2 "
        "usage, 3 server unreachable, 4 HTTP error or unreadable answer.");
    cmd->callback([o, &exit_code] {
        try {
            exit_code = run_client(*o);
        } catch (const usage_error& e) {
            std::cerr << "pkisim client: " << e.what() << '\n';
            exit_code = usage;
        } catch (const std::exception& e) {
            std::cerr << "pkisim client: " << e.what() << '\n';
            exit_code = bad_answer;
        }
    });
}

}  // namespace pkisim::cli
