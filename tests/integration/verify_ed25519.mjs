// Verifies Ed25519 signatures (Standard Webhooks v1a) with Node's own crypto, independently of
// hookd. stdin: [{"publicKey": "whpk_<base64>", "data": "<base64 of the signed bytes>",
// "sig": "<base64>"}...]; prints a JSON array of booleans, one per item.
import { createPublicKey, verify } from "node:crypto";

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (c) => (input += c));
process.stdin.on("end", () => {
  const out = JSON.parse(input).map(({ publicKey, data, sig }) => {
    if (!publicKey.startsWith("whpk_")) return false;
    const raw = Buffer.from(publicKey.slice(5), "base64");
    const key = createPublicKey({
      key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") },
      format: "jwk",
    });
    return verify(null, Buffer.from(data, "base64"), key, Buffer.from(sig, "base64"));
  });
  process.stdout.write(JSON.stringify(out));
});
