"""Appends what a busy appliance logs per second (10 alerts, 10 flows, one stats record, one AV
detection, one mail reject) to the files the agent follows. Used by run.sh."""
import sys, time
wt, d, secs = sys.argv[1], sys.argv[2], int(sys.argv[3])
fx = wt + '/agent/tests/fixtures/eve/'
alerts = []
for f in ["josevnz-eve-2.json", "josevnz-eve-large-head.json", "crowdsec-suricata-eve-detect.json", "cccs-alert_http.json"]:
    alerts += [l for l in open(fx + f, encoding='utf-8', errors='replace').read().splitlines() if '"event_type":"alert"' in l]
head = open(fx + 'josevnz-eve-large-head.json', encoding='utf-8', errors='replace').read().splitlines()
stats = next(l for l in head if '"event_type":"stats"' in l)
flow = next(l for l in head if '"event_type":"flow"' in l)
i = 0
end = time.time() + secs + 5
while time.time() < end:
    chunk = ''.join(alerts[(i * 10 + k) % len(alerts)] + '\n' + flow + '\n' for k in range(10)) + stats + '\n'
    open(d + '/eve.json', 'a').write(chunk)
    open(d + '/clamav.log', 'a').write("Sun Nov 22 03:02:01 2026 -> /srv/upload/x.exe: Eicar-Signature FOUND\n")
    open(d + '/mail.log', 'a').write("May 11 04:02:37 host1 postfix/smtpd[26897]: NOQUEUE: reject: RCPT from unknown[1.2.3.4]: 554 5.7.1 Service unavailable; from=<a@b> to=<c@d> proto=ESMTP helo=<x>\n")
    i += 1
    time.sleep(1)
