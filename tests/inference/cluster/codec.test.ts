import { decodeInput, encode } from '../../../inference/cluster/codec.js';

describe('the cluster job codec', () => {
  it('carries an image-to-image request\'s picture and strength through JSON byte for byte', () => {
    const image = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 255, 7]);
    const text = encode({ kind: 'imagine', request: { prompt: 'a red circle', seed: 4, image, strength: 0.45 } });
    expect(typeof text).toBe('string');
    const input = decodeInput(text);
    expect(input.kind).toBe('imagine');
    const request = input.kind === 'imagine' ? input.request : undefined;
    expect(Buffer.isBuffer(request?.image)).toBe(true);
    expect(request?.image?.equals(image)).toBe(true);
    expect(request).toMatchObject({ prompt: 'a red circle', seed: 4, strength: 0.45 });
  });
});
