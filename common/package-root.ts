/**
 * Where pictalk's package lies on disk, and the builtin model folders inside it: the nearest folder above this file
 * whose package.json is pictalk's (works from the sources and from dist/).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

export function packageRoot(): string {
  if (cached !== undefined) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'pictalk') return (cached = dir);
      } catch { /* keep looking */ }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('Could not find the pictalk package root (a package.json named pictalk) above common/');
    dir = up;
  }
}

/** A shipped model folder: `text-to-image`, `captioner` or `recognizer`. */
export const builtinModelDir = (name: 'text-to-image' | 'captioner' | 'recognizer'): string => join(packageRoot(), 'models', 'builtin', name);
