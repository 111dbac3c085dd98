// Verifies a hookd delivery with the reference `standardwebhooks` library.
// stdin: {"secret": "...", "headers": {...}, "body": "<raw body>"}; prints the verified payload
// as JSON and exits 0, or prints the error and exits 1.
import { Webhook } from "standardwebhooks";

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (c) => (input += c));
process.stdin.on("end", () => {
  const { secret, headers, body } = JSON.parse(input);
  try {
    const wh = new Webhook(secret.startsWith("whsec_") ? secret.slice(6) : secret);
    const payload = wh.verify(body, headers);
    process.stdout.write(JSON.stringify(payload));
    process.exit(0);
  } catch (e) {
    process.stdout.write(String(e && e.message ? e.message : e));
    process.exit(1);
  }
});
