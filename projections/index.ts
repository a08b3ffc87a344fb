import type { ReadModel } from './model';
import { sessionsModel } from './sessions/model';
import { eegModel } from './eeg/model';

/** Every read model `vigil project` runs, by name. */
export const readModels: Record<string, ReadModel> = {
  [sessionsModel.name]: sessionsModel,
  [eegModel.name]: eegModel,
};
