import { MAX_CUSTOM_ID, decodeCustomId, encodeCustomId } from '../../../adapters/discord/button.codec.js';
import { BUTTON_ACTIONS } from '../../../bot/types.js';

describe('Discord button custom ids', () => {
  it('encode every action of bot/ and decode back to { action, jobId }', () => {
    for (const action of BUTTON_ACTIONS) {
      const id = encodeCustomId({ action, jobId: 'job-42:x' });
      expect(id.length).toBeLessThanOrEqual(MAX_CUSTOM_ID);
      expect(decodeCustomId(id)).toEqual({ action, jobId: 'job-42:x' });
    }
  });

  it('refuse an id over Discord\'s 100 characters or without a job, rather than let Discord reject the message', () => {
    expect(() => encodeCustomId({ action: 'reroll', jobId: 'j'.repeat(100) })).toThrow(/1 to 100 characters/);
    expect(() => encodeCustomId({ action: 'reroll', jobId: '' })).toThrow(/custom id/);
  });

  it('decode nothing from a custom id pictalk did not make', () => {
    for (const id of ['reroll', 'vote:job-1', 'reroll:', ':job-1', '']) expect(decodeCustomId(id)).toBeUndefined();
  });
});
