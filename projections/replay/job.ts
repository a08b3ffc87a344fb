import { createWriteStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { QUEUE } from '../../core/jobs';
import { VigilError } from '../../core/errors';
import type { JobHandler } from '../../core/job-handler';
import { exportEvents, type ExportResult } from './export';
import type { ExportFormat } from './format';

/** What `POST /v1/admin/replays` enqueues for `kind: export` (api/routes/admin.ts). */
interface ExportJobData {
  kind: 'export';
  topic: string;
  from: string;
  to: string;
  session?: string;
  format: ExportFormat;
  /** The requesting key's tenant; `*` (an operator key) exports every tenant's events. */
  tenant_id: string;
  requested_by: string;
}

/** Where export jobs write their files: `<tmp>/vigil-exports/<job id>.<format>` on the jobs worker's host. */
const exportDir = (): string => path.join(os.tmpdir(), 'vigil-exports');

/**
 * `replay-export`: decoded events of one topic in an event-time range (and optionally one session) of
 * the requesting tenant only, as NDJSON or CSV, to a file on the worker's host; the job's output names
 * the file and the counts. One attempt: a failed export is requested again.
 */
export const exportJob: JobHandler<ExportJobData> = {
  queue: { name: QUEUE.replayExport, retryLimit: 0, retryDelay: 30, retryBackoff: false, expireInSeconds: 3600 },
  async handle(job, deps): Promise<ExportResult & { file: string; bytes: number }> {
    const { kafka, serde, topics } = deps;
    if (!kafka || !serde || !topics) throw new VigilError('CONFIG_INVALID', 'the export job needs Kafka and the serde');
    await mkdir(exportDir(), { recursive: true });
    const file = path.join(exportDir(), `${job.id}.${job.data.format}`);
    const out = createWriteStream(file);
    const result = await exportEvents({ kafka, serde, topics }, out, {
      topic: job.data.topic,
      from: Date.parse(job.data.from),
      to: Date.parse(job.data.to),
      session: job.data.session,
      tenant: job.data.tenant_id === '*' ? undefined : job.data.tenant_id,
      format: job.data.format,
    }).finally(() => out.end());
    await finished(out);
    return { ...result, file, bytes: (await stat(file)).size };
  },
};
