// Turning an epsilon-predicting model (the SD UNet) into a k-diffusion denoiser.
import { sd1Schedule, sigmaToT, type TrainingSchedule } from './schedules.js';
import { like, type CallInfo, type Denoiser, type EpsModel, type Vec } from './types.js';

export interface EpsDenoiserOptions {
  schedule?: TrainingSchedule;
  /**
   * Maps sigma to the timestep given to the model. Default: k-diffusion's sigma_to_t (fractional,
   * log-sigma interpolation), which is what A1111 feeds the UNet.
   */
  sigmaToT?: (sigma: number) => number;
}

/**
 * k-diffusion DiscreteEpsDDPMDenoiser: D(x, sigma) = x - sigma * eps(x / sqrt(sigma^2 + 1), t(sigma)).
 * The model sees the variance-preserving input x * c_in, as during training.
 */
export function epsToDenoiser(eps: EpsModel, options: EpsDenoiserOptions = {}): Denoiser {
  const schedule = options.schedule ?? sd1Schedule();
  const toT = options.sigmaToT ?? ((sigma: number) => sigmaToT(schedule, sigma));
  return async (x: Vec, sigma: number, info: CallInfo): Promise<Vec> => {
    const cIn = 1 / Math.sqrt(sigma * sigma + 1);
    const cOut = -sigma;
    const scaled = like(x);
    for (let i = 0; i < x.length; i++) scaled[i] = x[i]! * cIn;
    const e = await eps(scaled, toT(sigma), info);
    if (!e || e.length !== x.length) {
      throw new TypeError(`the eps model returned ${e?.length ?? 'no'} values for an input of ${x.length}`);
    }
    const out = like(x);
    for (let i = 0; i < x.length; i++) out[i] = x[i]! + e[i]! * cOut;
    return out;
  };
}
