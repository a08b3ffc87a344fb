import {
  AclOperationTypes,
  AclPermissionTypes,
  AclResourceTypes,
  ResourcePatternTypes,
  type AclEntry,
  type Admin,
} from 'kafkajs';
import { topicNames, type TopicNames } from '../schemas/catalogue';

/**
 * Who may do what on a secured cluster (issue 17): one Kafka principal per Vigil role, each allowed
 * only what the role does. Devices (and the gateway on their behalf) write the telemetry and session
 * topics and nothing else; only the processor writes scores and alerts; only the API writes commands;
 * readers read. Topics are named literally (a prefix like `vigil.fatigue.scores.` would also match
 * the what-if topic); consumer groups and transactional ids by the deployment's prefix.
 *
 * The plan is pure: `aclCommands` prints it as `kafka-acls.sh` commands for operators,
 * `applyAcls` creates it through the admin API (`vigil kafka-acls apply`).
 */
export const aclRoles = ['device', 'gateway', 'processor', 'projector', 'api', 'jobs', 'reader'] as const;
export type AclRole = (typeof aclRoles)[number];

type Operation = 'READ' | 'WRITE' | 'DESCRIBE';

export interface AclRule {
  principal: string;
  resourceType: 'TOPIC' | 'GROUP' | 'TRANSACTIONAL_ID';
  patternType: 'LITERAL' | 'PREFIXED';
  name: string;
  operations: Operation[];
}

const inputKeys = ['sessions', 'eeg', 'face', 'vehicle', 'game'] as const;

/** The rules of every role for the topics and groups of `prefix` (principal `User:<role>`). */
export function aclPlan(prefix: string, roles: readonly AclRole[] = aclRoles): AclRule[] {
  const t = topicNames(prefix);
  const all = Object.values(t);
  const topics = (principal: string, names: string[], operations: Operation[]): AclRule[] =>
    names.map((name) => ({ principal, resourceType: 'TOPIC', patternType: 'LITERAL', name, operations }));
  const prefixed = (principal: string, resourceType: 'GROUP' | 'TRANSACTIONAL_ID', name: string): AclRule => ({
    principal,
    resourceType,
    patternType: 'PREFIXED',
    name,
    operations: resourceType === 'GROUP' ? ['READ', 'DESCRIBE'] : ['WRITE', 'DESCRIBE'],
  });
  const groups = (principal: string) => prefixed(principal, 'GROUP', `${prefix}.`);
  const inputs = inputKeys.map((k) => t[k]);
  const rules: Record<AclRole, (p: string) => AclRule[]> = {
    device: (p) => topics(p, inputs, ['WRITE', 'DESCRIBE']),
    gateway: (p) => topics(p, inputs, ['WRITE', 'DESCRIBE']),
    processor: (p) => [
      ...topics(p, [...inputs, t.commands], ['READ', 'DESCRIBE']),
      ...topics(p, [t.scores, t.alerts, t.dlq, t.late], ['WRITE', 'DESCRIBE']),
      ...topics(p, [t.changelog], ['READ', 'WRITE', 'DESCRIBE']),
      groups(p),
      prefixed(p, 'TRANSACTIONAL_ID', `${prefix}.processor.`),
    ],
    projector: (p) => [
      ...topics(p, without(all, [t.dlq]), ['READ', 'DESCRIBE']),
      ...topics(p, [t.dlq], ['READ', 'WRITE', 'DESCRIBE']),
      groups(p),
    ],
    api: (p) => [...topics(p, without(all, [t.commands]), ['READ', 'DESCRIBE']), ...commandsRule(p, t), groups(p)],
    jobs: (p) => [
      ...topics(p, without(all, [t.scoresWhatIf, t.alertsWhatIf]), ['READ', 'DESCRIBE']),
      ...topics(p, [t.scoresWhatIf, t.alertsWhatIf], ['READ', 'WRITE', 'DESCRIBE']),
      groups(p),
      prefixed(p, 'TRANSACTIONAL_ID', `${prefix}.rescore.`),
    ],
    reader: (p) => [...topics(p, all, ['READ', 'DESCRIBE']), groups(p)],
  };
  return roles.flatMap((role) => rules[role](`User:${role}`));
}

const without = (names: string[], drop: string[]) => names.filter((n) => !drop.includes(n));
const commandsRule = (p: string, t: TopicNames): AclRule[] => [
  { principal: p, resourceType: 'TOPIC', patternType: 'LITERAL', name: t.commands, operations: ['WRITE', 'DESCRIBE'] },
];

/** The plan as kafka-acls.sh commands (one per rule), for an operator's cluster. */
export function aclCommands(rules: AclRule[], bootstrap = '$BOOTSTRAP', commandConfig = 'admin.properties'): string[] {
  const flag = { TOPIC: '--topic', GROUP: '--group', TRANSACTIONAL_ID: '--transactional-id' } as const;
  return rules.map((r) =>
    [
      `kafka-acls.sh --bootstrap-server ${bootstrap} --command-config ${commandConfig} --add`,
      `--allow-principal ${r.principal}`,
      ...r.operations.map((o) => `--operation ${o === 'DESCRIBE' ? 'Describe' : o === 'READ' ? 'Read' : 'Write'}`),
      `${flag[r.resourceType]} '${r.name}'`,
      `--resource-pattern-type ${r.patternType.toLowerCase()}`,
    ].join(' '),
  );
}

/** One kafkajs ACL entry per rule and operation. */
export function aclEntries(rules: AclRule[]): AclEntry[] {
  return rules.flatMap((r) =>
    r.operations.map((o) => ({
      principal: r.principal,
      host: '*',
      resourceType: AclResourceTypes[r.resourceType],
      resourceName: r.name,
      resourcePatternType: ResourcePatternTypes[r.patternType],
      operation: AclOperationTypes[o],
      permissionType: AclPermissionTypes.ALLOW,
    })),
  );
}

/** Creates the plan's ACLs (idempotent: Kafka keeps one copy of an ACL created twice). */
export async function applyAcls(admin: Admin, rules: AclRule[]): Promise<number> {
  const acl = aclEntries(rules);
  await admin.createAcls({ acl });
  return acl.length;
}
