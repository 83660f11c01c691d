/** Jest on ESM TypeScript: ts-jest compiles each file; the tests import `.js` paths as NodeNext requires. */
export default {
  testEnvironment: '<rootDir>/tests/helpers/onnx.environment.mjs',
  extensionsToTreatAsEsm: ['.ts'],
  roots: ['<rootDir>/tests'],
  testMatch: ['**/*.test.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json', diagnostics: false }] },
  testTimeout: 30000,
};
