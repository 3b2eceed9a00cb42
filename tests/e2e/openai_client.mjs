// The official `openai` npm client against a running `ztslm serve` over TLS (the generated CA
// comes in through NODE_EXTRA_CA_CERTS). Usage: node openai_client.mjs BASE_URL API_KEY MODEL
import OpenAI from "openai";

const [baseURL, apiKey, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60000 });

function check(cond, what) {
  if (!cond) {
    console.error("FAIL: " + what);
    process.exit(1);
  }
}

const messages = [
  { role: "system", content: "You are a test." },
  { role: "user", content: "Say something." },
];

const whole = await client.chat.completions.create({ model, messages, max_tokens: 6, temperature: 0, seed: 1 });
check(whole.object === "chat.completion", "non-streaming object");
check(typeof whole.choices[0].message.content === "string", "non-streaming content");
check(whole.usage.completion_tokens === 6, "completion_tokens " + whole.usage.completion_tokens);
check(whole.usage.prompt_tokens_details.cached_tokens === 0, "cached_tokens");

const stream = await client.chat.completions.create({
  model, messages, max_tokens: 6, temperature: 0, seed: 1, stream: true,
  stream_options: { include_usage: true },
});
let text = "";
let usage = null;
let finish = null;
for await (const chunk of stream) {
  if (chunk.usage) usage = chunk.usage;
  if (chunk.choices.length > 0) {
    text += chunk.choices[0].delta.content ?? "";
    if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
  }
}
check(usage !== null && usage.completion_tokens === 6, "streamed usage");
check(finish === "length", "streamed finish_reason " + finish);
check(text === whole.choices[0].message.content, "streamed text equals non-streamed text");

let denied = false;
try {
  await new OpenAI({ baseURL, apiKey: "ztslm_sk_00_wrong", maxRetries: 0 }).models.list();
} catch (e) {
  denied = e.status === 401;
}
check(denied, "wrong key gets 401");
console.log("openai client e2e: ok (" + JSON.stringify(text) + ")");
