import { AssignerProtocol, type PartitionAssigner } from 'kafkajs';

/**
 * Co-partitioning assignor: one member gets partition p of EVERY subscribed topic, so a processor
 * that joins several topics keyed by session sees all of a session's events. (kafkajs's round-robin
 * spreads each topic's partitions independently and does not guarantee this.)
 *
 * Partition numbers are dealt round-robin over the members sorted by id, which is deterministic for
 * a given membership. All subscribed topics must have the same partition count (topics ensure
 * guarantees it); a topic with fewer partitions simply gets fewer assignments.
 */
export function assignCoPartitioned(
  memberIds: string[],
  partitionsByTopic: Record<string, number[]>,
): Record<string, Record<string, number[]>> {
  const members = [...memberIds].sort();
  const all = new Set<number>();
  for (const ps of Object.values(partitionsByTopic)) for (const p of ps) all.add(p);
  const out: Record<string, Record<string, number[]>> = Object.fromEntries(members.map((m) => [m, {}]));
  [...all]
    .sort((a, b) => a - b)
    .forEach((p, i) => {
      const member = members[i % members.length]!;
      for (const [topic, ps] of Object.entries(partitionsByTopic)) {
        if (ps.includes(p)) (out[member]![topic] ??= []).push(p);
      }
    });
  return out;
}

export const CoPartitionAssigner: PartitionAssigner = ({ cluster }) => ({
  name: 'VigilCoPartitionAssigner',
  version: 1,
  async assign({ members, topics }) {
    const partitionsByTopic = Object.fromEntries(
      topics.map((t) => [t, cluster.findTopicPartitionMetadata(t).map((m) => m.partitionId)]),
    );
    const assignment = assignCoPartitioned(
      members.map((m) => m.memberId),
      partitionsByTopic,
    );
    return Object.entries(assignment).map(([memberId, a]) => ({
      memberId,
      memberAssignment: AssignerProtocol.MemberAssignment.encode({
        version: 1,
        assignment: a,
        userData: Buffer.alloc(0),
      }),
    }));
  },
  protocol({ topics }) {
    return {
      name: 'VigilCoPartitionAssigner',
      metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: Buffer.alloc(0) }),
    };
  },
});
