"""Run header/payload cases through stripe-sync, stripe-node and stripe-python.

Rule (SPEC.md): where both SDKs accept, stripe-sync accepts; where both reject,
it rejects; where they disagree, it rejects. Also: every header `stripe-sync
sign` prints is accepted by both SDKs.
"""
import hmac, hashlib, json, subprocess, sys

BIN, WORK = sys.argv[1], sys.argv[2]
SECRET = "whsec_conformance_5e1f"
T = 1767225590
PAYLOAD = '{\n  "id": "evt_1",\n  "object": "event",\n  "type": "invoice.paid"\n}'

def sig(t, payload=PAYLOAD, secret=SECRET):
    return hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()

good = sig(T)
cases = [
    ("plain", f"t={T},v1={good}", PAYLOAD, T + 5),
    ("later v1 matches", f"t={T},v1={'0'*64},v1={good}", PAYLOAD, T),
    ("v0 only", f"t={T},v0={good}", PAYLOAD, T),
    ("trailing comma", f"t={T},v1={good},", PAYLOAD, T),
    ("t=+N", f"t=+{T},v1={good}", PAYLOAD, T),
    ("t= N", f"t= {T},v1={good}", PAYLOAD, T),
    ("leading zeros", f"t=000{T},v1={good}", PAYLOAD, T),
    ("v1 cut at second =", f"t={T},v1={good}=x", PAYLOAD, T),
    ("uppercase hex", f"t={T},v1={good.upper()}", PAYLOAD, T),
    ("space before v1", f"t={T}, v1={good}", PAYLOAD, T),
    ("T=", f"T={T},v1={good}", PAYLOAD, T),
    ("missing t", f"v1={good}", PAYLOAD, T),
    ("two t, same", f"t={T},t={T},v1={good}", PAYLOAD, T),
    ("two t, last signed", f"t=1,t={T},v1={good}", PAYLOAD, T),
    ("two t, first signed", f"t={T},t=1,v1={good}", PAYLOAD, T),
    ("t with garbage", f"t={T}abc,v1={good}", PAYLOAD, T),
    ("two t, 2nd with garbage", f"t={T},t={T}abc,v1={good}", PAYLOAD, T),
    ("two t, 1st with garbage", f"t={T}abc,t={T},v1={good}", PAYLOAD, T),
    ("two t, +N and N", f"t=+{T},t={T},v1={good}", PAYLOAD, T),
    ("nbsp before, \\x1c after", f"t=\u00a0{T}\x1c,v1={good}", PAYLOAD, T),
    ("\\x1c before", f"t=\x1c{T},v1={good}", PAYLOAD, T),
    ("nbsp before, \\x85 after", f"t=\u00a0{T}\x85,v1={good}", PAYLOAD, T),
    ("ideographic space after", f"t={T}\u3000,v1={good}", PAYLOAD, T),
    ("BOM before", f"t=\ufeff{T},v1={good}", PAYLOAD, T),
    ("0_0 underscores", f"t=0_0,v1={sig(0)}", PAYLOAD, 0),
    ("t with underscores", f"t=1_767_225_590,v1={good}", PAYLOAD, T),
    ("t=-1", f"t=-1,v1={sig(-1)}", PAYLOAD, T),
    ("negative t", f"t=-5,v1={sig(-5)}", PAYLOAD, T),
    ("age = tolerance", f"t={T},v1={good}", PAYLOAD, T + 300),
    ("age = tolerance + 1", f"t={T},v1={good}", PAYLOAD, T + 301),
    ("future", f"t={T + 10000},v1={sig(T + 10000)}", PAYLOAD, T),
    ("wrong secret", f"t={T},v1={sig(T, secret='whsec_other')}", PAYLOAD, T),
    ("trailing newline", f"t={T},v1={good}", PAYLOAD + "\n", T),
    ("empty header", "", PAYLOAD, T),
    ("empty payload", f"t={T},v1={sig(T, '')}", "", T),
    ("bare v1", f"t={T},v1", PAYLOAD, T),
    ("empty v1 then good", f"t={T},v1=,v1={good}", PAYLOAD, T),
    ("non-ASCII v1 then good", f"t={T},v1=\u00e9,v1={good}", PAYLOAD, T),
    ("good then non-ASCII v1", f"t={T},v1={good},v1=\u00e9", PAYLOAD, T),
    ("good then 64-unit non-ASCII", f"t={T},v1={good},v1={'a' * 63}\u00e9", PAYLOAD, T),
    ("64-unit non-ASCII then good", f"t={T},v1={'a' * 63}\u00e9,v1={good}", PAYLOAD, T),
    ("t = 2^54 (exact double)", f"t={2**54},v1={sig(2**54)}", PAYLOAD, T),
    ("t = 2^60 (node prints ...7000)", f"t={2**60},v1={sig(2**60)}", PAYLOAD, T),
    ("good then empty v1", f"t={T},v1={good},v1=", PAYLOAD, T),
    ("bare t", f"t,v1={good}", PAYLOAD, T),
    ("huge t", f"t=9007199254740993,v1={sig(9007199254740993)}", PAYLOAD, T),
]

NODE = r"""
const Stripe = require(process.argv[1] + '/node_modules/stripe');
const stripe = Stripe('sk_test_x');
const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const out = cases.map(([name, header, payload, now]) => {
  try { stripe.webhooks.signature.verifyHeader(payload, header, process.argv[2], 300, undefined, now * 1000); return true; }
  catch (e) { return false; }
});
console.log(JSON.stringify(out));
"""

def node(cases):
    r = subprocess.run(["node", "-e", NODE, WORK, SECRET], input=json.dumps(cases), capture_output=True, text=True, check=True)
    return json.loads(r.stdout)

def python(cases):
    sys.path.insert(0, WORK + "/py")
    import time
    import stripe
    out = []
    for name, header, payload, now in cases:
        real = time.time
        time.time = lambda: float(now)
        try:
            stripe.WebhookSignature.verify_header(payload, header, SECRET, 300)
            out.append(True)
        except Exception:
            out.append(False)
        finally:
            time.time = real
    return out

def ours(case):
    name, header, payload, now = case
    r = subprocess.run([BIN, "verify", "--json", "--secret", SECRET, "--signature", header, "--now", str(now), "-"],
                       input=payload.encode(), capture_output=True)
    if r.returncode == 2:
        return None
    return json.loads(r.stdout)["valid"]

n, p = node(cases), python(cases)
failures = 0
print(f"{'case':28} {'node':6} {'python':7} {'stripe-sync':12} expected")
for case, a, b in zip(cases, n, p):
    us = ours(case)
    expected = a if a == b else False
    ok = us == expected
    failures += not ok
    print(f"{case[0]:28} {str(a):6} {str(b):7} {str(us):12} {expected}{'' if ok else '   <-- MISMATCH'}")

# Every header `sign` prints verifies in both SDKs.
signed = []
for i, payload in enumerate([PAYLOAD, '{"id":"evt_2"}', "é ünïcode ✓", "x" * 5000]):
    t = T + i
    header = subprocess.run([BIN, "sign", "--secret", SECRET, "--timestamp", str(t), "-"], input=payload.encode(),
                            capture_output=True, check=True).stdout.decode().strip()
    signed.append((f"sign #{i}", header, payload, t))
sn, sp = node(signed), python(signed)
for case, a, b in zip(signed, sn, sp):
    ok = a and b
    failures += not ok
    print(f"{case[0]:28} {str(a):6} {str(b):7} {'(signed)':12} True{'' if ok else '   <-- REJECTED'}")
print(f"\n{len(cases)} verify cases, {len(signed)} signed headers, {failures} failures")
sys.exit(1 if failures else 0)
