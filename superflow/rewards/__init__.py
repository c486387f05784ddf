"""Rewards: a registry of named reward functions plus built-in offline rewards."""

from superflow.rewards.registry import Reward, RewardError, get_reward, register_reward, reward_names

__all__ = ["Reward", "RewardError", "get_reward", "register_reward", "reward_names"]
