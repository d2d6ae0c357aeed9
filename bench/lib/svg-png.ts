/**
 * What the benches' charts share: an SVG written beside its PNG, photographed by headless Chromium (Debian's
 * /usr/bin/chromium through playwright-core, the product's dev dependency that the browser tests use; CHROMIUM to
 * override; without Chromium, the SVG alone), and the small helpers every axis needs.
 */
import { existsSync, writeFileSync } from "node:fs";

/** Writes `<base>.svg`, and `<base>.png` when Chromium is there; returns the PNG's path, or the SVG's. */
export async function writeSvgAndPng(svg: string, base: string, width: number, height: number): Promise<string> {
  const [file] = await writeSvgsAndPngs([{ svg, base, width, height }]);
  return file!;
}

export type SvgImage = { svg: string; base: string; width: number; height: number };

/** The same for several images, with one browser for them all (a launch takes a second or two here). */
export async function writeSvgsAndPngs(images: SvgImage[]): Promise<string[]> {
  for (const { svg, base } of images) writeFileSync(`${base}.svg`, svg);
  const chromium = process.env.CHROMIUM ?? "/usr/bin/chromium";
  if (!existsSync(chromium) || images.length === 0) return images.map(({ base }) => `${base}.svg`);
  const { chromium: launcher } = await import("playwright-core");
  const browser = await launcher.launch({
    executablePath: chromium,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu"],
  });
  try {
    for (const { svg, base, width, height } of images) {
      const page = await browser.newPage({ viewport: { width, height } });
      await page.setContent(`<html><body style="margin:0">${svg}</body></html>`);
      await page.screenshot({ path: `${base}.png`, clip: { x: 0, y: 0, width, height } });
      await page.close();
    }
  } finally {
    await browser.close();
  }
  return images.map(({ base }) => `${base}.png`);
}

/** The smallest round value (1, 1.2, 1.5, 2, 2.5, … × 10^k) at or above v: the top of an axis. */
export function niceCeiling(v: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(v));
  for (const step of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (step * magnitude >= v) return step * magnitude;
  return 10 * magnitude;
}

export function escapeXml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}
