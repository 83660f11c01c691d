import { canonicalScene, sceneKey, sceneProblem, scenesEqual, type Scene } from '../../../models/world/scene.js';

const cat = { name: 'cat', color: null, size: 'big' } as const;
const circle = { name: 'circle', color: 'red', size: 'small' } as const;

describe('canonical scene', () => {
  it('gives equal scenes equal keys and different scenes different keys', () => {
    const a: Scene = { axis: 'horizontal', objects: [circle, cat] };
    expect(scenesEqual(a, { axis: 'horizontal', objects: [{ ...circle }, { ...cat }] })).toBe(true);
    expect(scenesEqual(a, { axis: 'horizontal', objects: [cat, circle] })).toBe(false);
    expect(scenesEqual(a, { axis: 'vertical', objects: [circle, cat] })).toBe(false);
    expect(scenesEqual(a, { axis: 'horizontal', objects: [{ ...circle, size: 'big' }, cat] })).toBe(false);
    expect(scenesEqual(a, { axis: 'horizontal', objects: [{ ...circle, color: 'blue' }, cat] })).toBe(false);
  });

  it('ignores the axis of a single object and extra fields such as boxes', () => {
    expect(sceneKey({ axis: 'vertical', objects: [cat] })).toBe(sceneKey({ axis: null, objects: [cat] }));
    const drawn = { axis: null, objects: [{ ...cat, box: { x: 1, y: 2, width: 3, height: 4 } }] };
    expect(canonicalScene(drawn)).toEqual({ axis: null, objects: [cat] });
  });

  it('says what is wrong with a scene the world cannot draw', () => {
    expect(sceneProblem({ axis: 'horizontal', objects: [circle, cat] })).toBeNull();
    expect(sceneProblem({ axis: null, objects: [] })).toMatch(/one to three/);
    expect(sceneProblem({ axis: null, objects: [circle, cat] })).toMatch(/axis/);
    expect(sceneProblem({ axis: null, objects: [{ ...cat, color: 'red' }] })).toMatch(/no colour/);
    expect(sceneProblem({ axis: null, objects: [{ ...circle, color: null }] })).toMatch(/colour/);
    expect(sceneProblem({ axis: null, objects: [{ ...circle, name: 'hexagon' }] })).toMatch(/unknown object/);
  });
});
