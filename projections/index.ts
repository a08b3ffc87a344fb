import type { ReadModel } from './model';
import { sessionsModel } from './sessions/model';
import { eegModel } from './eeg/model';
import { faceModel } from './face/model';
import { vehicleModel } from './vehicle/model';
import { gameModel } from './game/model';
import { scoresModel } from './scores/model';
import { alertsModel } from './alerts/model';
import { scoresWhatIfModel } from './scores-whatif/model';

/** Every read model `vigil project` runs, by name. */
export const readModels: Record<string, ReadModel> = Object.fromEntries(
  [sessionsModel, eegModel, faceModel, vehicleModel, gameModel, scoresModel, alertsModel, scoresWhatIfModel].map(
    (m) => [m.name, m],
  ),
);
