/**
 * vega-lite spec → SVG (vega, headless) → PNG (resvg). resvg gets the shipped DejaVu Sans files and
 * no system fonts, and the specs name the same family, so a plot renders identically on any
 * machine (no font fallback decides the text widths).
 */
import { Resvg } from '@resvg/resvg-js';
import { existsSync } from 'node:fs';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { packagePath } from '../paths.js';
import { PLOT_FONT_FAMILY } from './plots.js';

/** The TTF files shipped in assets/fonts (DejaVu Sans; licence beside them). */
export function plotFontFiles(): string[] {
  const files = ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf'].map((f) => packagePath('assets', 'fonts', f));
  const missing = files.filter((f) => !existsSync(f));
  if (missing.length > 0) throw new Error(`report: shipped font missing: ${missing.join(', ')} (reinstall the package)`);
  return files;
}

/** Render a vega-lite spec to an SVG document (no browser, no canvas). */
export async function specToSvg(spec: TopLevelSpec): Promise<string> {
  const vgSpec = compile(spec).spec;
  const view = new vega.View(vega.parse(vgSpec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Rasterise an SVG with the shipped font; `scale` 2 gives crisp plots on high-DPI screens. */
export function svgToPng(svg: string, opts: { scale?: number } = {}): Buffer {
  const resvg = new Resvg(svg, {
    font: { fontFiles: plotFontFiles(), loadSystemFonts: false, defaultFontFamily: PLOT_FONT_FAMILY },
    fitTo: { mode: 'zoom', value: opts.scale ?? 2 },
    background: 'white',
  });
  return resvg.render().asPng();
}

export interface PngInfo {
  width: number;
  height: number;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Width and height from a PNG's IHDR chunk; throws when the bytes are not a PNG. */
export function pngInfo(bytes: Uint8Array): PngInfo {
  if (bytes.length < 24 || PNG_SIGNATURE.some((b, i) => bytes[i] !== b)) throw new Error('not a PNG (bad signature)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = String.fromCharCode(bytes[12]!, bytes[13]!, bytes[14]!, bytes[15]!);
  if (type !== 'IHDR') throw new Error(`not a PNG (first chunk is ${type}, expected IHDR)`);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}
