// What the CA engine and the RA engine share: the operator console's word splitting and IOS
// texts, the `show` table layouts (ios-pki-research.md §1.3, §1.4, §3.2), one-time passwords
// and small digests. Internal to pkisim::scep (not installed with the public headers).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pkisim/scep/codec.hpp"
#include "pkisim/scep/openssl.hpp"
#include "pkisim/scep/service.hpp"
#include "pkisim/scep/store.hpp"
#include "pkisim/timers/config.hpp"

namespace pkisim::scep::detail {

inline constexpr std::string_view pki_message_type = "application/x-pki-message";

std::string as_string(const bytes& b);

// A CertRep as the HTTP answer (`application/x-pki-message`); 500 when it cannot be encoded.
// A digest we cannot sign with (e.g. MD5 without --legacy-crypto) falls back to SHA-256, so the
// client can still read a FAILURE (RFC 8894 mandatory digest).
http_answer cert_rep_answer(cert_rep_params params, std::string detail);
// Model rule 4: the IOS-exact 404 for GetNextCACert while there is no rollover certificate.
http_answer ios_not_found(std::string detail);
// IOS request fingerprints: MD5, 32 upper-case hex digits.
std::string md5_upper_hex(const bytes& data);
// Hex SHA-1 of a certificate's public key (how requests are matched to their signer).
std::string key_hash(X509* cert);

// `show crypto pki server` texts.
std::string_view grant_text(timers::grant_mode g);
std::string_view db_level_text(timers::database_level d);

// Operator console input: blank-separated words; a whole unsigned number in `base`.
std::vector<std::string_view> words(std::string_view line);
std::optional<std::uint64_t> parse_u64(std::string_view s, int base = 10);

// Decrypts a stored CA / RA key (`what` = "CA" / "RA") with the operator's passphrase; throws
// startup_error (wrong passphrase: its own exit code; anything else: the store's).
evp_pkey_ptr load_stored_key(std::string_view pem, const engine_options& options,
                             std::string_view what);

// A name as IOS prints it in its `show crypto pki server` tables: IOS attribute names (cn, o,
// ou, c, serialNumber, hostname = unstructuredName, ipaddress = unstructuredAddress), in DER
// order, the values of one multi-valued RDN joined by '+', RDNs joined by `separator` (',' in
// the requests table, ' ' in the certificates table), nothing escaped. Captures (research
// §1.3; S13 lab write-ups): "serialNumber=67109104+hostname=R15,cn=R15,o=laba,o=ru" (requests),
// "serialNumber=67109104+hostname=R15 cn=R15 o=laba o=ru" (certificates).
std::string ios_name(const X509_NAME* name, char separator);
// The request state as IOS prints it: `pending`, and `granted` once granted, whether the
// certificate was issued already or (RA) the CA still holds it (research §1.3 [OBS]).
// `rejected` and `expired` are pkisim's words (IOS's are not in the stored captures).
std::string_view ios_request_state(request_state s);

// `show ... requests`: one section with its header and rule, then the rows (IOS lists the
// newest request first).
std::string request_section(std::string_view title, std::string_view rows);
std::string request_row(const request_record& r);

// `show ... certificates`: header, then one row per certificate. The date columns keep their
// width when the day has one digit: "16:57:14 UTC Apr 2 2026  16:57:14 UTC Apr 1 2029   cn=R14"
// (IOS capture, S13).
inline constexpr std::string_view certificate_header =
    "Serial Issued date              Expire date               Subject Name\n";
std::string certificate_row(std::string_view serial_hex, time_point not_before,
                            time_point not_after, std::string_view subject);

// `show crypto pki timers` (research §3.2): a titled section, the soonest timer first, then one
// line per timer, soonest first. A section without timers is not printed (IOS prints no empty
// header).
struct timer_entry {
    time_point at;
    std::string name;
};
std::string timer_section(std::string_view title, std::vector<timer_entry> timers_, time_point now);

// Lines IOS does not print (the data folder, the upstream URL, the RA's own state) go to the
// pkisim-only `show pkisim`; this is its title line.
std::string pkisim_section_title(std::string_view server_name);

}  // namespace pkisim::scep::detail
