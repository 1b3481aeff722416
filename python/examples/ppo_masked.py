"""PPO with invalid-action masking on a lepton vector env, in one file (CleanRL's style).

    python python/examples/ppo_masked.py --scenario deeprm --total-steps 200000

The env is `lepton.make_vec`: every env is stepped in Rust by one call per batch, and the
legal actions come batched in `infos["action_mask"]`. Masking follows Huang & Ontañón, "A
Closer Look at Invalid Action Masking in Policy Gradient Algorithms" (FLAIRS 2022): illegal
logits are replaced by a large negative number before the softmax, in acting and in the
update, so illegal actions get neither probability nor gradient. The hyperparameters default
to CleanRL's `ppo.py` (Huang et al., "The 37 Implementation Details of PPO", ICLR Blog Track
2022). At the end it scores the greedy policy against a lepton heuristic on the same seeds.
"""

import argparse
import time

import numpy as np
import torch
from torch import nn

import lepton


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scenario", default="deeprm")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--total-steps", type=int, default=200_000)
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--num-steps", type=int, default=128, help="rollout length per env")
    p.add_argument("--lr", type=float, default=2.5e-4)
    p.add_argument("--gamma", type=float, default=0.99)
    p.add_argument("--gae-lambda", type=float, default=0.95)
    p.add_argument("--minibatches", type=int, default=4)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--clip", type=float, default=0.2)
    p.add_argument("--ent-coef", type=float, default=0.01)
    p.add_argument("--vf-coef", type=float, default=0.5)
    p.add_argument("--max-grad-norm", type=float, default=0.5)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--baseline", default="sjf", help="a lepton heuristic to score against")
    return p.parse_args(argv)


def layer(n_in, n_out, gain=np.sqrt(2)):
    linear = nn.Linear(n_in, n_out)
    nn.init.orthogonal_(linear.weight, gain)
    nn.init.zeros_(linear.bias)
    return linear


class Agent(nn.Module):
    def __init__(self, obs_dim, num_actions, hidden):
        super().__init__()
        self.critic = nn.Sequential(
            layer(obs_dim, hidden), nn.Tanh(), layer(hidden, hidden), nn.Tanh(), layer(hidden, 1, 1.0)
        )
        self.actor = nn.Sequential(
            layer(obs_dim, hidden), nn.Tanh(), layer(hidden, hidden), nn.Tanh(),
            layer(hidden, num_actions, 0.01),
        )

    def value(self, obs):
        return self.critic(obs).squeeze(-1)

    def distribution(self, obs, mask):
        logits = self.actor(obs).masked_fill(~mask, -1e8)
        return torch.distributions.Categorical(logits=logits)


def train(args):
    torch.manual_seed(args.seed)
    envs = lepton.make_vec(args.scenario, args.num_envs)
    obs_dim, num_actions = envs.single_observation_space.shape[0], envs.single_action_space.n
    agent = Agent(obs_dim, num_actions, args.hidden)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.lr, eps=1e-5)

    n, t_len = args.num_envs, args.num_steps
    batch = n * t_len
    obs_buf = torch.zeros(t_len, n, obs_dim)
    mask_buf = torch.zeros(t_len, n, num_actions, dtype=torch.bool)
    act_buf = torch.zeros(t_len, n, dtype=torch.long)
    logp_buf, rew_buf, val_buf = torch.zeros(t_len, n), torch.zeros(t_len, n), torch.zeros(t_len, n)
    # Whether the step's episode went on afterwards; a truncated step bootstraps from its
    # final observation's value (added to its reward), a terminated one does not.
    cont_buf = torch.zeros(t_len, n)

    obs_np, infos = envs.reset(seed=args.seed)
    obs, mask = torch.from_numpy(obs_np), torch.from_numpy(infos["action_mask"])
    iterations = max(1, args.total_steps // batch)
    returns_seen, steps, start = [], 0, time.time()
    for iteration in range(iterations):
        lr_now = args.lr * (1.0 - iteration / iterations)
        optimizer.param_groups[0]["lr"] = lr_now
        for t in range(t_len):
            with torch.no_grad():
                dist = agent.distribution(obs, mask)
                action = dist.sample()
                logp_buf[t], val_buf[t] = dist.log_prob(action), agent.value(obs)
            obs_buf[t], mask_buf[t], act_buf[t] = obs, mask, action
            obs_np, reward, term, trunc, infos = envs.step(action.numpy())
            reward = torch.from_numpy(reward).float()
            if trunc.any():
                final = infos["final_obs"]
                idx = np.flatnonzero(trunc)
                with torch.no_grad():
                    bootstrap = agent.value(torch.from_numpy(np.stack(final[idx])))
                reward[idx] += args.gamma * bootstrap
            rew_buf[t] = reward
            cont_buf[t] = torch.from_numpy(~(term | trunc)).float()
            obs, mask = torch.from_numpy(obs_np), torch.from_numpy(infos["action_mask"])
            if "final_info" in infos:
                done = infos["_final_info"]
                returns_seen.extend(infos["final_info"]["episode"]["r"][done].tolist())
        steps += batch

        with torch.no_grad():
            next_value = agent.value(obs)
            adv = torch.zeros(t_len, n)
            last = torch.zeros(n)
            for t in reversed(range(t_len)):
                following = next_value if t == t_len - 1 else val_buf[t + 1]
                delta = rew_buf[t] + args.gamma * following * cont_buf[t] - val_buf[t]
                last = delta + args.gamma * args.gae_lambda * cont_buf[t] * last
                adv[t] = last
            ret = adv + val_buf

        b_obs, b_mask = obs_buf.reshape(batch, obs_dim), mask_buf.reshape(batch, num_actions)
        b_act, b_logp = act_buf.reshape(batch), logp_buf.reshape(batch)
        b_adv, b_ret = adv.reshape(batch), ret.reshape(batch)
        mb = batch // args.minibatches
        for _ in range(args.epochs):
            order = torch.randperm(batch)
            for lo in range(0, batch, mb):
                i = order[lo : lo + mb]
                dist = agent.distribution(b_obs[i], b_mask[i])
                ratio = (dist.log_prob(b_act[i]) - b_logp[i]).exp()
                a = b_adv[i]
                a = (a - a.mean()) / (a.std() + 1e-8)
                pg_loss = torch.max(-a * ratio, -a * ratio.clamp(1 - args.clip, 1 + args.clip)).mean()
                v_loss = 0.5 * (agent.value(b_obs[i]) - b_ret[i]).pow(2).mean()
                loss = pg_loss - args.ent_coef * dist.entropy().mean() + args.vf_coef * v_loss
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()
        recent = np.mean(returns_seen[-20:]) if returns_seen else float("nan")
        print(f"iter {iteration + 1}/{iterations} steps {steps} "
              f"sps {steps / (time.time() - start):.0f} mean return (last 20) {recent:.2f}", flush=True)
    return agent, returns_seen, steps


def evaluate(agent, scenario, baseline, episodes, seed0=10_000):
    """Mean slowdown of the greedy policy and of `baseline` on the same held-out seeds."""
    env = lepton.make(scenario)
    policy, heuristic = [], []
    for k in range(episodes):
        obs, info = env.reset(seed=seed0 + k)
        done = False
        while not done:
            with torch.no_grad():
                logits = agent.distribution(
                    torch.from_numpy(obs)[None], torch.from_numpy(info["action_mask"])[None]
                ).logits
            obs, _, terminated, truncated, info = env.step(int(logits.argmax()))
            done = terminated or truncated
        policy.append(info["episode_metrics"]["completion_slowdown"])
        heuristic.append(
            lepton.scheduler(baseline).run_episode(env, seed=seed0 + k)["completion_slowdown"]
        )
    return float(np.mean(policy)), float(np.mean(heuristic))


def main(argv=None):
    args = parse_args(argv)
    agent, returns, steps = train(args)
    ours, theirs = evaluate(agent, args.scenario, args.baseline, args.eval_episodes)
    print(f"greedy policy: mean completion slowdown {ours:.3f}; {args.baseline}: {theirs:.3f} "
          f"({args.eval_episodes} paired held-out seeds)")
    return {"steps": steps, "returns": returns, "policy": ours, "baseline": theirs}


if __name__ == "__main__":
    main()
