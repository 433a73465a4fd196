// Loads the dashboard in Debian's chromium (headless) and checks it the way an
// official would see it. Usage:
//   node dashboard.mjs URL EXPECTED.json SCREENSHOT_DIR
// EXPECTED.json: [{"source": "VIETTEL", "clean_pct": "87.41", "progress_pct": "0.00",
//                  "compliance_pct": "12.50", "overdue": "7"}, ...]
// Prints a JSON report; exits 1 when any check fails.
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const [url, expectedPath, shotDir] = process.argv.slice(2);
const expected = JSON.parse(readFileSync(expectedPath, 'utf8'));
const problems = [];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  for (const [name, viewport] of [['laptop', { width: 1280, height: 900 }], ['phone', { width: 390, height: 844 }]]) {
    const page = await browser.newPage({ viewport });
    page.on('console', (m) => { if (m.type() === 'error') problems.push(`${name}: console error: ${m.text()}`); });
    page.on('pageerror', (e) => problems.push(`${name}: page error: ${e.message}`));
    page.on('requestfailed', (r) => problems.push(`${name}: request failed: ${r.url()}`));
    page.on('response', (r) => { if (r.status() >= 400) problems.push(`${name}: HTTP ${r.status()} for ${r.url()}`); });
    const resp = await page.goto(url, { waitUntil: 'load' });
    if (!resp || resp.status() !== 200) problems.push(`${name}: dashboard answered ${resp && resp.status()}`);
    for (const e of expected) {
      const row = page.locator(`table tbody tr[data-source="${e.source}"]`).first();
      if (await row.count() === 0) { problems.push(`${name}: no row for ${e.source}`); continue; }
      if (!(await row.isVisible())) problems.push(`${name}: row for ${e.source} not visible`);
      if (e.clean_pct !== null) {
        const got = (await row.locator('.clean-pct').textContent()).trim();
        if (got !== e.clean_pct) problems.push(`${name}: ${e.source} clean % shows ${got}, published ${e.clean_pct}`);
        const prog = (await row.locator('.progress-pct').textContent()).trim();
        if (prog !== e.progress_pct) problems.push(`${name}: ${e.source} progress shows ${prog}, published ${e.progress_pct}`);
        const enf = page.locator(`table.enforcement tbody tr[data-source="${e.source}"]`).first();
        if (await enf.count() === 0) { problems.push(`${name}: no enforcement row for ${e.source}`); continue; }
        const comp = (await enf.locator('.compliance-pct').textContent()).trim();
        if (comp !== e.compliance_pct) problems.push(`${name}: ${e.source} compliance shows ${comp}, published ${e.compliance_pct}`);
        const late = (await enf.locator('.overdue').textContent()).trim();
        if (late !== e.overdue) problems.push(`${name}: ${e.source} overdue shows ${late}, published ${e.overdue}`);
      }
    }
    const charts = await page.locator('svg.chart').evaluateAll((svgs) => svgs.map((s) => {
      const b = s.getBoundingClientRect();
      const lines = [...s.querySelectorAll('polyline.series')].map((p) => {
        const r = p.getBBox();
        return { source: p.dataset.source, w: r.width, h: r.height };
      });
      return { w: b.width, h: b.height, lines };
    }));
    // Per kind: clean %, progress %, overdue trend.
    const lineCharts = charts;
    if (lineCharts.length < 6) problems.push(`${name}: ${lineCharts.length} charts, expected 6`);
    for (const c of lineCharts) {
      if (c.w < 200 || c.h < 80) problems.push(`${name}: chart drawn at ${c.w}x${c.h}`);
      if (c.lines.length === 0) problems.push(`${name}: chart without lines`);
      if (!c.lines.some((l) => l.w > 0)) problems.push(`${name}: chart lines have no extent`);
    }
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 1) problems.push(`${name}: page is ${overflow}px wider than the screen`);
    await page.screenshot({ path: join(shotDir, `dashboard-${name}.png`), fullPage: true });
    console.log(JSON.stringify({ viewport: name, charts: charts.length, lines: charts.reduce((n, c) => n + c.lines.length, 0) }));
    await page.close();
  }
} finally {
  await browser.close();
}
if (problems.length) {
  console.log(JSON.stringify({ problems }, null, 1));
  process.exit(1);
}
console.log(JSON.stringify({ ok: true }));
