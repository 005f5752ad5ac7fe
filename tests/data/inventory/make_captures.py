#!/usr/bin/env python3
"""Writes the composed IOS captures of tests/data/inventory/ (see README.md there).

The layouts follow public captures (genieparser and ntc-templates fixtures, ios-pki-research.md
§1.4/§3.2); the dates are chosen here so that the fleet tells a story: a 5-year IOS CA
(lifetime certificate 600, auto-rollover 30) captured on 2029-03-02, ten months before it
expires. Run from this folder: python3 make_captures.py
"""
from datetime import datetime, timedelta, timezone

UTC = timezone.utc
MON = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
DOW = "Mon Tue Wed Thu Fri Sat Sun".split()

CA_NB = datetime(2025, 1, 10, 9, 0, 0, tzinfo=UTC)
CA_NA = CA_NB + timedelta(days=1825)
SHADOW_AT = CA_NA - timedelta(days=30)
LIFE = timedelta(days=600)


def last_sunday(year, month):
    d = datetime(year, month + 1, 1, tzinfo=UTC) - timedelta(days=1)
    return d - timedelta(days=(d.weekday() - 6) % 7)


def ios(t, off_min=0, zone="UTC", frac=None, dow=False):
    if zone == "CET":
        # EU summer time (clock summer-time CEST recurring last Sun Mar 2:00 last Sun Oct 3:00):
        # IOS prints each instant in the zone in effect then.
        begin = last_sunday(t.year, 3).replace(hour=1)
        end = last_sunday(t.year, 10).replace(hour=1)
        if begin <= t < end:
            zone, off_min = "CEST", 120
    lt = t + timedelta(minutes=off_min)
    s = f"{lt.hour:02}:{lt.minute:02}:{lt.second:02}"
    if frac is not None:
        s += f".{frac:03}"
    s += f" {zone} "
    if dow:
        s += DOW[lt.weekday()] + " "
    return s + f"{MON[lt.month - 1]} {lt.day} {lt.year}"


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def countdown(d):
    ms = int(d.total_seconds() * 1000)
    days, ms = divmod(ms, 86_400_000)
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    if days:
        return f"{days}d{h:2}:{m:02}:{s:02}.{ms:03}"
    if h:
        return f"{h}:{m:02}:{s:02}.{ms:03}"
    if m:
        return f"{m}:{s:02}.{ms:03}"
    return f"{s}.{ms:03}"


def issued(at):
    return at, min(at + LIFE, CA_NA)


def point(nb, na, pct):
    return nb + (na - nb) * pct / 100


def timer_line(now, at, name):
    return f"  |{countdown(at - now):>17}  ({iso(at)}) {name}"


def cert_block(kind, serial, subject, nb, na, tps, off=0, zone="UTC", renew=None, status="Available"):
    out = [kind, f"  Status: {status}", f"  Certificate Serial Number (hex): {serial}",
           "  Certificate Usage: General Purpose" if "CA" not in kind else "  Certificate Usage: Signature",
           "  Issuer: ", "    cn=HUB-CA", "  Subject:"]
    if "CA" in kind:
        out += ["    cn=HUB-CA"]
    else:
        out += [f"    Name: {subject}", f"    hostname={subject}"]
    out += ["  Validity Date: ", f"    start date: {ios(nb, off, zone)}", f"    end   date: {ios(na, off, zone)}"]
    if renew is not None:
        out.append(f"    renew date: {ios(renew, off, zone)}")
    out += [f"  Associated Trustpoints: {' '.join(tps)} ", f"  Storage: nvram:HUB-CA#{serial}.cer", ""]
    return out


def trustpoint(name, pct, extra=(), regenerate=False):
    lines = [f"crypto pki trustpoint {name}", " enrollment url http://10.0.0.1:80",
             f" subject-name CN={{host}}", " revocation-check none", f" rsakeypair {name}"]
    lines += [f" {e}" for e in extra]
    lines.append(f" auto-enroll {pct}{' regenerate' if regenerate else ''}")
    lines.append("!")
    return lines


def router(host, now, tp, pct, cert, zone_cfg=(), off=0, zone="UTC", pending=False,
           print_shadow=None, print_renew=None, extra=(), more_at=None, wrap=False,
           regenerate=False):
    """One router's captures: show clock, show running-config, certificates, timers."""
    out = [f"{host}#show clock", ios(now, off, zone, frac=118, dow=True), f"{host}#show running-config",
           "Building configuration...", "", "Current configuration : 4211 bytes", "!",
           "version 15.5", f"hostname {host}", "!"]
    out += list(zone_cfg) + ["!"]
    out += [l.replace("{host}", host) for l in trustpoint(tp, pct, extra, regenerate)]
    out += ["crypto pki certificate chain " + tp, " certificate 2A", "  308203A0 30820288 A0030201 02020101",
            "  \tquit", " certificate ca 01", "  30820322 3082020A A0030201 02020101", "  \tquit",
            "!", "interface Tunnel0", " ip address 10.255.0.14 255.255.0.0", "!", "end", ""]
    out += [f"{host}#show crypto pki certificates"]
    body = []
    if pending:
        body += ["Certificate", "  Subject:", f"    Name: {host}", "  Status: Pending",
                 "  Key Usage: General Purpose",
                 "  Certificate Request Fingerprint MD5: 6C1B7F9A 41D2C2E1 0A6F2B33 9E18C4D7",
                 "  Certificate Request Fingerprint SHA1: 0F2C8B1D 77E3A2C4 5B9D0E11 A4C3F2B1 88D0C4E2",
                 f"  Associated Trustpoint: {tp}", ""]
    if cert is not None:
        nb, na = cert
        renew = print_renew if print_renew is not None else point(nb, na, pct)
        body += cert_block("Certificate", "2A", host, nb, na, [tp], off, zone, renew=renew)
    body += cert_block("CA Certificate", "01", "HUB-CA", CA_NB, CA_NA, [tp], off, zone)
    if wrap:
        # The terminal wrapped the end date at 40 columns.
        for i, l in enumerate(body):
            if l.startswith("    end   date:") and i < 12:
                body[i:i + 1] = [l[:32], l[32:].lstrip()]
                break
    if more_at is not None:
        body.insert(more_at, " --More-- \b\b\b\b\b\b\b\b\b\b          \b\b\b\b\b\b\b\b\b\b" + body.pop(more_at))
    out += body
    out += [f"{host}#show crypto pki timers", "PKI Timers"]
    timers = []
    if cert is not None and not pending:
        nb, na = cert
        at = point(nb, na, pct)
        kind = "SHADOW" if na >= CA_NA else "RENEW"
        if print_shadow is not None:
            at, kind = print_shadow, "SHADOW"
        if at > now:
            timers.append((at, f"{kind} {tp}"))
    if pending:
        timers.append((now + timedelta(seconds=42, milliseconds=517), f"POLL {tp}"))
    timers.sort()
    if timers:
        out.append(f"|{countdown(timers[0][0] - now):>17}  ({iso(timers[0][0])})")
        out += [timer_line(now, at, name) for at, name in timers]
    out += ["Expiry Alert Timers"]
    alert = CA_NA - timedelta(days=60)
    out += [f"|{countdown(alert - now):>17}  ({iso(alert)})", timer_line(now, alert, f"CA({tp})")]
    out.append(f"{host}#")
    return out


def main():
    now = datetime(2029, 3, 2, 10, 15, 30, tzinfo=UTC)
    spokes = []
    # spoke-114: enrolled exactly 600 days before CA expiry: the longest truncated certificate.
    spokes += router("spoke-114", now, "GETVPN", 70, issued(CA_NA - LIFE))
    # spoke-115: Central European Time, summer time configured; truncated certificate.
    spokes += router("spoke-115", now + timedelta(minutes=3), "GETVPN", 70,
                     issued(datetime(2028, 9, 1, 12, 0, tzinfo=UTC)), off=60, zone="CET",
                     zone_cfg=["clock timezone CET 1 0",
                               "clock summer-time CEST recurring last Sun Mar 2:00 last Sun Oct 3:00"],
                     more_at=9)
    # spoke-116: untruncated certificate: RENEW first, then a truncated one and SHADOW.
    spokes += router("spoke-116", now + timedelta(minutes=5), "GETVPN", 70,
                     issued(datetime(2028, 4, 1, 10, 0, tzinfo=UTC)), wrap=True)
    # spoke-117: prints SHADOW at 90 % of the CA certificate's life (the S7 observation),
    # which the model does not compute: the consistency check reports it.
    spokes += router("spoke-117", now + timedelta(minutes=7), "GETVPN", 70,
                     issued(datetime(2028, 7, 20, 16, 45, tzinfo=UTC)),
                     print_shadow=CA_NB + (CA_NA - CA_NB) * 0.9)
    # spoke-118: a renewal request pending at the CA (manual grant).
    spokes += router("spoke-118", now + timedelta(minutes=9), "GETVPN", 70,
                     issued(datetime(2027, 7, 1, 8, 0, tzinfo=UTC)), pending=True)
    # spoke-119: India Standard Time: IST is ambiguous, the router's clock timezone decides.
    spokes += router("spoke-119", now + timedelta(minutes=11), "GETVPN", 70,
                     issued(datetime(2028, 11, 5, 6, 30, tzinfo=UTC)), off=330, zone="IST",
                     zone_cfg=["clock timezone IST 5 30"])
    with open("fleet/spokes.txt", "w") as f:
        f.write("\n".join(spokes) + "\n")

    # dmvpn-7: another trustpoint (DMVPN, auto-enroll 80 regenerate, retry period 5), one file
    # per router without prompts, US Eastern time.
    r = router("dmvpn-7", now + timedelta(minutes=20), "DMVPN", 80,
               issued(datetime(2028, 10, 15, 8, 30, tzinfo=UTC)), off=-300, zone="EST",
               zone_cfg=["clock timezone EST -5 0"], extra=["enrollment retry period 5"],
               regenerate=True)
    r = [l for l in r if not l.startswith("dmvpn-7#")]
    with open("fleet/dmvpn-7.log", "w") as f:
        f.write("\n".join(r) + "\n")

    # spoke-120: only `show crypto pki certificates` was captured: state unknown.
    r = router("spoke-120", now + timedelta(minutes=25), "GETVPN", 70,
               issued(datetime(2028, 6, 1, 0, 0, tzinfo=UTC)))
    start = r.index("spoke-120#show crypto pki certificates")
    stop = r.index("spoke-120#show crypto pki timers")
    with open("fleet/spoke-120.txt", "w") as f:
        f.write("\n".join(r[start:stop]) + "\n")

    # The CA: show clock, its running-config, show crypto pki server, show crypto pki timers.
    ca = ["hub-ca#show clock", ios(now - timedelta(minutes=2), frac=902, dow=True),
          "hub-ca#show running-config | section crypto pki|ip http", "ip http server",
          "ip http max-connections 5", "crypto pki server HUB-CA", " database level complete",
          " issuer-name CN=HUB-CA", " lifetime certificate 600", " lifetime ca-certificate 1825",
          " auto-rollover 30", "crypto pki trustpoint HUB-CA", " revocation-check crl",
          " rsakeypair HUB-CA", "hub-ca#show crypto pki server", "Certificate Server HUB-CA:",
          "    Status: enabled", "    State: enabled",
          "    Server's configuration is locked  (enter \"shut\" to unlock it)",
          "    Issuer name: CN=HUB-CA", "    CA cert fingerprint: 9F3A61C2 0B7E44D8 51AC2E90 37D6F1B4",
          "    Granting mode is: manual", "    Last certificate issued serial number (hex): 2F1",
          f"    CA certificate expiration timer: {ios(CA_NA)}",
          f"    CRL NextUpdate timer: {ios(now + timedelta(hours=5))}",
          "    Current primary storage dir: nvram:",
          "    Database Level: Complete - all issued certs written as <serialnum>.cer",
          "    Auto-Rollover configured, overlap period 30 days",
          f"    Autorollover timer: {ios(SHADOW_AT)}", "hub-ca#show crypto pki timers", "CS Timers",
          f"|{countdown(timedelta(hours=5)):>17}  ({iso(now + timedelta(hours=5))})",
          timer_line(now, now + timedelta(hours=5), "CS CRL UPDATE"),
          timer_line(now, SHADOW_AT, "CS SHADOW CERT GENERATION"),
          timer_line(now, CA_NA, "CS CERT EXPIRE"), "hub-ca#"]
    with open("ca/hub-ca.txt", "w") as f:
        f.write("\n".join(ca) + "\n")

    # After the shadow: spoke-301 has the rollover CA and its rollover certificate installed.
    later = datetime(2029, 12, 20, 8, 0, 5, tzinfo=UTC)
    r = router("spoke-301", later, "GETVPN", 70, issued(datetime(2028, 6, 10, 9, 0, tzinfo=UTC)))
    i = r.index("spoke-301#show crypto pki timers")
    nb2 = CA_NA
    na2 = nb2 + LIFE
    roll = (cert_block("Certificate (Rollover)", "02", "spoke-301", nb2, na2, ["GETVPN"])
            + ["CA Certificate (Rollover)", "  Status: Available",
               "  Certificate Serial Number (hex): 0301", "  Certificate Usage: Signature",
               "  Issuer: ", "    cn=HUB-CA", "  Subject: ", "    cn=HUB-CA", "  Validity Date: ",
               f"    start date: {ios(CA_NA)}", f"    end   date: {ios(CA_NA + timedelta(days=1825))}",
               "  Associated Trustpoints: GETVPN ", ""])
    r[i:i] = roll
    # The rollover router's timers no longer list SHADOW: keep only the expiry alerts.
    j = r.index("spoke-301#show crypto pki timers")
    k = r.index("Expiry Alert Timers")
    r[j + 1:k] = ["PKI Timers"]
    with open("rollover/spoke-301.txt", "w") as f:
        f.write("\n".join(r) + "\n")
    ca2 = [l for l in ca if not l.startswith("|") and not l.startswith("  |")]
    ca2 = [ios(later, frac=3, dow=True) if l.endswith(str(now.year)) and l[0].isdigit() else l for l in ca2]
    ca2.insert(ca2.index("hub-ca#show crypto pki timers"), "    Rollover status: available for rollover")
    ca2.insert(ca2.index("hub-ca#show crypto pki timers"),
               "    Rollover CA cert fingerprint: 4C0E7A19 D2B3F580 6A1E93C7 0F5D2B8E")
    ca2.insert(ca2.index("hub-ca#show crypto pki timers"),
               f"    Rollover CA cert expiration time: {ios(CA_NA + timedelta(days=1825))}")
    with open("rollover/hub-ca.txt", "w") as f:
        f.write("\n".join(ca2) + "\n")


if __name__ == "__main__":
    main()
