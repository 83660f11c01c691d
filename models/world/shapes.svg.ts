/**
 * SVG for each shape, filling a `size` x `size` cell (the shape's bounding box is the cell, but for the
 * narrower diamond). A 1 px outline in a darker shade keeps light colours (yellow) visible on light backgrounds.
 */
import type { Rgb } from './vocabulary.js';

const fmt = (v: number): string => (Math.round(v * 100) / 100).toString();
const hex = (c: Rgb): string => `#${[c.r, c.g, c.b].map((v) => Math.round(v).toString(16).padStart(2, '0')).join('')}`;
const darker = (c: Rgb): Rgb => ({ r: c.r * 0.6, g: c.g * 0.6, b: c.b * 0.6 });
const points = (ps: Array<[number, number]>): string => ps.map(([x, y]) => `${fmt(x)},${fmt(y)}`).join(' ');

/** The shape's outline as an SVG element (without paint), inset by half the stroke. */
function shapeElement(name: string, s: number): string {
  const h = 0.5;            // half the 1 px stroke, so the outline stays inside the cell
  const c = s / 2;
  switch (name) {
    case 'circle':
      return `<circle cx="${fmt(c)}" cy="${fmt(c)}" r="${fmt(c - h)}"/>`;
    case 'square':
      return `<rect x="${h}" y="${h}" width="${fmt(s - 1)}" height="${fmt(s - 1)}"/>`;
    case 'triangle':
      return `<polygon points="${points([[c, h], [s - h, s - h], [h, s - h]])}"/>`;
    case 'diamond': {
      const half = (s - 1) * 0.36;  // 72% as wide as tall: never mistaken for a square
      return `<polygon points="${points([[c, h], [c + half, c], [c, s - h], [c - half, c]])}"/>`;
    }
    case 'star': {
      // Five points; outer radius fills the cell's height, centre lowered so the bottom points touch the edge.
      const outer = (s - 1) / (1 + Math.cos(Math.PI / 5));
      const inner = outer * 0.45;
      const cy = h + outer;
      const ps: Array<[number, number]> = [];
      for (let k = 0; k < 10; k += 1) {
        const r = k % 2 === 0 ? outer : inner;
        const angle = -Math.PI / 2 + (k * Math.PI) / 5;
        ps.push([c + r * Math.cos(angle), cy + r * Math.sin(angle)]);
      }
      return `<polygon points="${points(ps)}"/>`;
    }
    case 'heart': {
      // Two lobes and a point, drawn in a 0..1 box then scaled to the cell.
      const k = s - 1;
      const X = (v: number): string => fmt(h + v * k);
      return `<path d="M ${X(0.5)} ${X(1)} C ${X(0.12)} ${X(0.72)} ${X(0)} ${X(0.5)} ${X(0)} ${X(0.3)} `
        + `C ${X(0)} ${X(0.08)} ${X(0.2)} ${X(0)} ${X(0.3)} ${X(0)} C ${X(0.42)} ${X(0)} ${X(0.5)} ${X(0.1)} ${X(0.5)} ${X(0.18)} `
        + `C ${X(0.5)} ${X(0.1)} ${X(0.58)} ${X(0)} ${X(0.7)} ${X(0)} C ${X(0.8)} ${X(0)} ${X(1)} ${X(0.08)} ${X(1)} ${X(0.3)} `
        + `C ${X(1)} ${X(0.5)} ${X(0.88)} ${X(0.72)} ${X(0.5)} ${X(1)} Z"/>`;
    }
    default:
      throw new RangeError(`Expected a shape name, got ${JSON.stringify(name)}`);
  }
}

export function shapeSvg(name: string, size: number, fill: Rgb): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="0 0 ${size} ${size}">`
    + `<g fill="${hex(fill)}" stroke="${hex(darker(fill))}" stroke-width="1" stroke-linejoin="round">${shapeElement(name, size)}</g></svg>`;
}

/** The drawn extent of a shape inside its cell: the cell itself, narrower for the diamond. */
export function shapeBox(name: string, size: number): { dx: number; width: number } {
  if (name !== 'diamond') return { dx: 0, width: size };
  const half = (size - 1) * 0.36 + 0.5;
  const left = Math.floor(size / 2 - half);
  return { dx: left, width: Math.ceil(size / 2 + half) - left };
}
