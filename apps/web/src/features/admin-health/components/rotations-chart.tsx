import type { SystemStatus } from '@keyturn/shared';
import { Group, Text } from '@mantine/core';

type Day = SystemStatus['rotationsByDay'][number];

const W = 640;
const H = 180;
const PAD = { top: 12, right: 8, bottom: 28, left: 32 };
const COMPLETED = '#087f5b';
const FAILED = '#c92a2a';

/** Stacked bars per day (completed + failed); the numbers are also in a table for screen readers. */
export function RotationsChart({ days }: { days: Day[] }) {
  if (days.length === 0) return <Text c="gray.7">No rotations in this period yet.</Text>;
  const max = Math.max(1, ...days.map((d) => d.completed + d.failed));
  const innerW = W - PAD.left - PAD.right;
  const innerH = H - PAD.top - PAD.bottom;
  const slot = innerW / days.length;
  const bar = Math.max(2, Math.min(28, slot * 0.7));
  const y = (v: number) => PAD.top + innerH - (v / max) * innerH;
  const labelEvery = Math.ceil(days.length / 8);
  const total = days.reduce((n, d) => n + d.completed + d.failed, 0);

  return (
    <figure style={{ margin: 0 }}>
      <svg viewBox={`0 0 ${W} ${H}`} width="100%" role="img" aria-labelledby="rot-chart-title" style={{ maxHeight: 220 }}>
        <title id="rot-chart-title">{`Rotations per day over ${days.length} days: ${total} in total`}</title>
        <line x1={PAD.left} x2={W - PAD.right} y1={y(0)} y2={y(0)} stroke="#868e96" />
        <text x={PAD.left - 6} y={y(max) + 4} textAnchor="end" fontSize="11" fill="#495057">
          {max}
        </text>
        <text x={PAD.left - 6} y={y(0) + 4} textAnchor="end" fontSize="11" fill="#495057">
          0
        </text>
        {days.map((d, i) => {
          const x = PAD.left + i * slot + (slot - bar) / 2;
          const hc = (d.completed / max) * innerH;
          const hf = (d.failed / max) * innerH;
          return (
            <g key={d.day}>
              <rect x={x} y={y(d.completed)} width={bar} height={hc} fill={COMPLETED}>
                <title>{`${d.day}: ${d.completed} completed`}</title>
              </rect>
              <rect x={x} y={y(d.completed) - hf} width={bar} height={hf} fill={FAILED}>
                <title>{`${d.day}: ${d.failed} failed`}</title>
              </rect>
              {i % labelEvery === 0 ? (
                <text x={x + bar / 2} y={H - 8} textAnchor="middle" fontSize="11" fill="#495057">
                  {d.day.slice(5)}
                </text>
              ) : null}
            </g>
          );
        })}
      </svg>
      <figcaption>
        <Group gap="md" mt={4}>
          <Legend color={COMPLETED} label="Completed" />
          <Legend color={FAILED} label="Failed" />
        </Group>
      </figcaption>
      <table className="kt-visually-hidden">
        <caption>Rotations per day</caption>
        <thead>
          <tr>
            <th scope="col">Day</th>
            <th scope="col">Completed</th>
            <th scope="col">Failed</th>
          </tr>
        </thead>
        <tbody>
          {days.map((d) => (
            <tr key={d.day}>
              <th scope="row">{d.day}</th>
              <td>{d.completed}</td>
              <td>{d.failed}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}

function Legend({ color, label }: { color: string; label: string }) {
  return (
    <Group gap={6}>
      <span aria-hidden style={{ width: 12, height: 12, background: color, display: 'inline-block', borderRadius: 2 }} />
      <Text size="xs">{label}</Text>
    </Group>
  );
}
