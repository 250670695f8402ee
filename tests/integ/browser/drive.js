// Drives Debian's chromium for tests/integ/web.py: one browser, one context (so the session
// cookie carries over), the pages of a plan visited in order. Usage:
//   node drive.js PLAN.json RESULT.json
// PLAN: {"chromium": PATH, "steps": [{"url", "waitText"?, "waitSelector"?, "screenshot"?,
//        "timeoutMs"?}]}. RESULT: [{url, status, finalUrl, html, text, waited, pwned, screenshot}];
// a step whose wait times out is recorded with waited: false, not thrown.
"use strict";
const fs = require("fs");
const { chromium } = require("playwright-core");

async function main() {
  const plan = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  const browser = await chromium.launch({
    executablePath: plan.chromium,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  const results = [];
  const consoleLines = [];
  try {
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    const page = await context.newPage();
    page.on("console", (message) => consoleLines.push(message.type() + ": " + message.text()));
    page.on("pageerror", (error) => consoleLines.push("pageerror: " + error.message));
    for (const step of plan.steps) {
      const timeout = step.timeoutMs || 20000;
      const response = await page.goto(step.url, { waitUntil: "load", timeout });
      let waited = true;
      try {
        if (step.waitSelector)
          await page.waitForSelector(step.waitSelector, { timeout });
        // A locator, not waitForFunction: it runs in playwright's own world, which the page's
        // Content-Security-Policy (no eval) does not govern.
        if (step.waitText)
          await page.locator("body", { hasText: step.waitText }).waitFor({ timeout });
      } catch (error) {
        waited = false;
      }
      const result = {
        url: step.url,
        status: response ? response.status() : 0,
        finalUrl: page.url(),
        html: await page.content(),
        text: await page.evaluate(() => document.body ? document.body.innerText : ""),
        waited,
        // Markup a hostile text would have made, had it not been escaped.
        pwned: await page.evaluate(() => document.getElementById("pwned") !== null),
        screenshot: null,
      };
      if (step.screenshot) {
        await page.screenshot({ path: step.screenshot, fullPage: false });
        result.screenshot = step.screenshot;
      }
      results.push(result);
    }
    const cookies = await context.cookies();
    results.push({ cookies, console: consoleLines });
  } finally {
    await browser.close();
  }
  fs.writeFileSync(process.argv[3], JSON.stringify(results));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
