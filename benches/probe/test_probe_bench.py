#!/usr/bin/env python3
"""Tests of probe_bench.py's readers and verdicts (stdlib unittest, no network, no root).

    python3 -m unittest discover -s benches/probe -p 'test_*.py'

The fixtures are trimmed from real outputs of `nmap -sV --version-light -oX -` and
`sockeye probe --json` against the lab (tests/lab), so that a change in either format
that the benchmark would misread shows up here rather than as a wrong table.
"""

import os
import sys
import unittest

# No __pycache__ next to the scripts (they often run as root from a checkout).
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import probe_bench as pb  # noqa: E402

NMAP_XML = """<?xml version="1.0" encoding="UTF-8"?>
<nmaprun scanner="nmap" args="nmap -n -sV --version-light" version="7.93">
<host><status state="up" reason="arp-response"/>
<address addr="198.18.0.2" addrtype="ipv4"/><address addr="E6:E6:11:E4:1D:F2" addrtype="mac"/>
<ports>
<port protocol="tcp" portid="23"><state state="closed" reason="reset"/><service name="telnet" method="table" conf="3"/></port>
<port protocol="tcp" portid="25"><state state="open" reason="syn-ack"/><service name="smtp" product="Postfix smtpd" hostname=" mail.lab.test" method="probed" conf="10"/></port>
<port protocol="tcp" portid="389"><state state="open" reason="syn-ack"/><service name="ldap" product="OpenLDAP" version="2.2.X - 2.3.X" method="probed" conf="10"/></port>
<port protocol="tcp" portid="443"><state state="open" reason="syn-ack"/><service name="http" product="nginx" version="1.22.1" tunnel="ssl" method="probed" conf="10"/></port>
<port protocol="tcp" portid="993"><state state="open" reason="syn-ack"/><service name="imaps" method="table" conf="3"/></port>
</ports></host></nmaprun>
"""

TLS = ('{"version":"TLSv1.3","cipher":"TLS13_AES_256_GCM_SHA384","chain":[],'
       '"verified":false,"name":"198.18.0.2"}')
SOCKEYE_JSON = "\n".join([
    '{"type":"service","proto":"tcp","state":"closed","reason":"conn-refused","addr":"198.18.0.2",'
    '"port":23,"service":"telnet","method":"table","steps":[]}',
    '{"type":"service","proto":"tcp","state":"open","reason":"syn-ack","addr":"198.18.0.2",'
    '"port":25,"service":"smtp","method":"probed",'
    '"banner":"220 mail.lab.test ESMTP Postfix (sockeye lab)","starttls":{"command":"STARTTLS",'
    '"offered":true,"accepted":true,"reply":"220 2.0.0 Ready to start TLS","tls":' + TLS + '},'
    '"steps":[]}',
    '{"type":"service","proto":"tcp","state":"open","reason":"syn-ack","addr":"198.18.0.2",'
    '"port":389,"service":"ldap","method":"probed","starttls":{"command":"StartTLS",'
    '"accepted":true,"reply":"success (0)","tls":' + TLS + '},"steps":[]}',
    '{"type":"service","proto":"tcp","state":"open","reason":"syn-ack","addr":"198.18.0.2",'
    '"port":443,"service":"https","method":"probed","banner":"HTTP/1.1 200 OK","tls":' + TLS + ','
    '"http":{"status":200,"reason":"OK","server":"nginx/1.22.1"},"steps":[]}',
    '{"type":"service","proto":"tcp","state":"open","reason":"syn-ack","addr":"198.18.0.2",'
    '"port":993,"service":"imaps","method":"probed","banner":"* OK Dovecot (Debian) ready.",'
    '"tls":' + TLS + ',"steps":[]}',
    '{"type":"host","addr":"198.18.0.2","open":4,"closed":1,"filtered":0}',
    'not json at all',
    '{"type":"summary","command":"probe","hosts":1,"ports":5,"open":4}',
])

A = "198.18.0.2"


class Readers(unittest.TestCase):
    def test_nmap_xml(self):
        n = pb.parse_nmap_xml(NMAP_XML)
        self.assertEqual(sorted(p for _a, p in n), [23, 25, 389, 443, 993])
        self.assertEqual(n[(A, 443)], {"state": "open", "name": "http", "product": "nginx",
                                       "version": "1.22.1", "tunnel": "ssl", "method": "probed"})
        self.assertEqual(n[(A, 23)]["state"], "closed")
        self.assertEqual(n[(A, 25)]["hostname"], " mail.lab.test")

    def test_nmap_xml_truncated_is_empty(self):
        # A run killed mid-output must count as "found nothing", not crash the harness.
        self.assertEqual(pb.parse_nmap_xml(NMAP_XML[:200]), {})

    def test_sockeye_json(self):
        s = pb.parse_sockeye(SOCKEYE_JSON)
        self.assertEqual(sorted(p for _a, p in s), [23, 25, 389, 443, 993])
        self.assertEqual(s[(A, 443)]["http"]["server"], "nginx/1.22.1")


class Facts(unittest.TestCase):
    def setUp(self):
        self.s = pb.parse_sockeye(SOCKEYE_JSON)

    def test_complete_records_pass(self):
        for p in (25, 389, 443, 993):
            self.assertEqual(pb.sockeye_facts_ok(p, self.s[(A, p)]), [], p)

    def test_starttls_without_handshake_is_missing(self):
        rec = dict(self.s[(A, 25)])
        rec["starttls"] = {"command": "STARTTLS", "accepted": True, "reply": "220",
                           "tls": {"failed": "handshake: alert"}}
        self.assertEqual(pb.sockeye_facts_ok(25, rec), ["tls after starttls"])
        rec["starttls"] = {"command": "STARTTLS", "accepted": False, "reply": "454"}
        self.assertEqual(pb.sockeye_facts_ok(25, rec), ["starttls accepted"])

    def test_a_421_greeting_is_not_smtp_with_starttls(self):
        rec = {"state": "open", "port": 25, "service": "unknown",
               "banner": "421 4.7.0 mail.lab.test Error: too many connections from 198.18.0.1"}
        self.assertEqual(pb.sockeye_facts_ok(25, rec), ["starttls accepted"])

    def test_closed_port(self):
        self.assertEqual(pb.sockeye_facts_ok(23, self.s[(A, 23)]), ["state closed"])


class Parity(unittest.TestCase):
    def setUp(self):
        self.n = pb.parse_nmap_xml(NMAP_XML)
        self.s = pb.parse_sockeye(SOCKEYE_JSON)

    def verdict(self, port):
        return pb.parity(self.n.get((A, port)), self.s.get((A, port)))

    def test_product_hostname_and_tls_found(self):
        ok, detail = self.verdict(25)
        self.assertTrue(ok, detail)
        self.assertIn("hostname", detail)
        ok, detail = self.verdict(443)
        self.assertTrue(ok, detail)
        self.assertIn("tls", detail)
        self.assertIn("version seen", detail)

    def test_product_only_nmap_infers_is_a_gap(self):
        ok, detail = self.verdict(389)
        self.assertFalse(ok)
        self.assertIn("OpenLDAP", detail)

    def test_extras_when_nmap_guessed_from_the_port(self):
        ok, detail = self.verdict(993)
        self.assertTrue(ok, detail)
        self.assertIn("+tls", detail)
        self.assertIn("+banner", detail)

    def test_closed_in_nmap_needs_nothing(self):
        self.assertTrue(self.verdict(23)[0])

    def test_missing_tls_and_wrong_service(self):
        rec = dict(self.s[(A, 443)])
        del rec["tls"]
        rec["service"] = "ssh"
        ok, detail = pb.parity(self.n[(A, 443)], rec)
        self.assertFalse(ok)
        self.assertIn("tls", detail)
        self.assertIn("service ssh vs http", detail)

    def test_sockeye_not_open(self):
        self.assertEqual(pb.parity(self.n[(A, 25)], None), (False, "sockeye: not open"))


class Bench2(unittest.TestCase):
    HOSTS = ["198.18.16.0", "198.18.16.1"]

    def sockeye_run(self, drop_tls_on=None):
        found = {}
        for h in self.HOSTS:
            tls = {"version": "TLSv1.3"}
            found[(h, 25)] = {"state": "open", "starttls": {"accepted": True, "tls": tls}}
            found[(h, 443)] = {"state": "open", "tls": tls}
        if drop_tls_on:
            found[drop_tls_on]["tls"] = {"failed": "timed out"}
        return {"found": found}

    def test_sockeye_complete(self):
        r = self.sockeye_run()
        problems, _what = pb.check_bench2("s", "sockeye", r, self.HOSTS)
        self.assertEqual(problems, [])
        self.assertEqual(r["counts"], {"records": 4, "25 starttls+tls": 2, "443 tls": 2})

    def test_sockeye_failed_handshake_counts(self):
        r = self.sockeye_run(drop_tls_on=("198.18.16.1", 443))
        problems, _what = pb.check_bench2("s", "sockeye", r, self.HOSTS)
        self.assertEqual(problems, ["443: 1 of 2 with TLS"])

    def test_nmap_counts(self):
        found = {}
        for h in self.HOSTS:
            found[(h, 25)] = {"state": "open", "name": "smtp", "product": "Postfix smtpd"}
            found[(h, 443)] = {"state": "open", "name": "http", "product": "nginx",
                               "tunnel": "ssl"}
        found[("198.18.16.1", 443)] = {"state": "open", "name": "https"}  # by port only
        r = {"found": found}
        problems, _what = pb.check_bench2("n", "nmap-xml", r, self.HOSTS)
        self.assertEqual(r["counts"], {"open": 4, "25 smtp+product": 2, "443 ssl/http+product": 1})
        self.assertEqual(problems, ["identified smtp 2, ssl/http 1 of 2"])


if __name__ == "__main__":
    unittest.main()
