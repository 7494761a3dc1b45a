import pytest

from paths import ROOT
from skillmimic.bench import Args
from skillmimic.cli import parse
from skillmimic.errors import UserError


def test_defaults_parse():
    assert parse(Args, []) == Args()


def test_config_file_then_flags_override(tmp_path):
    cfg = tmp_path / "b.yaml"
    cfg.write_text("num_worlds: [8, 16]\nsteps: 5\nbackend: mujoco\n")
    a = parse(Args, ["--config", str(cfg), "--steps", "7"])
    assert a.num_worlds == (8, 16) and a.steps == 7 and a.backend == "mujoco"
    assert parse(Args, [f"--config={cfg}"]).steps == 5


@pytest.mark.parametrize("name", ["gpu.yaml", "cpu.yaml"])
def test_shipped_configs_load(name):
    parse(Args, ["--config", str(ROOT / "configs" / "bench" / name)])


@pytest.mark.parametrize(
    "text, message",
    [("num_wrlds: 3\n", "unknown key"), ("- 1\n- 2\n", "expected a mapping"), ("a: [1\n", "not valid YAML"),
     ("steps: four\n", "steps: expected an integer, got 'four'"), ("num_worlds: 64\n", "num_worlds: expected a list"),
     ("profile: 1\n", "profile: expected true or false"), ("tolerance: [1]\n", "tolerance: expected a number or null"),
     ("backend: 3\n", "backend: expected one of 'auto', 'mujoco_warp', 'mujoco'")],
)
def test_bad_config_is_a_one_line_error(tmp_path, text, message):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    with pytest.raises(UserError, match=message) as e:
        parse(Args, ["--config", str(cfg)])
    assert str(cfg) in str(e.value) and "\n" not in str(e.value)


def test_missing_config(tmp_path):
    with pytest.raises(UserError, match="no such config file"):
        parse(Args, ["--config", str(tmp_path / "none.yaml")])


@pytest.mark.parametrize("name", ["layup.yaml", "mixed.yaml"])
def test_llc_configs_load(name, tmp_path):
    import sys

    sys.path.insert(0, str(ROOT))
    import train_llc

    a = parse(train_llc.Args, ["--config", str(ROOT / "configs" / "llc" / name)])
    assert a.motion_dir.startswith("data/BallPlay-M")
    assert parse(train_llc.Args, []) == train_llc.Args()
    # A nested dataclass set in part by the file and in part by a flag keeps train_llc.py's other env defaults.
    cfg = tmp_path / "nested.yaml"
    cfg.write_text((ROOT / "configs" / "llc" / name).read_text() + "env:\n  max_episode_steps: 600\n")
    nested = parse(train_llc.Args, ["--config", str(cfg), "--env.fall-distance", "0.4"])
    assert nested.env.fall_distance == 0.4 and nested.env.max_episode_steps == 600
    assert nested.env.hand == "rigid" and nested.env.ball_distance == 0.5 and nested.env.steps_after_clip == 150


def test_config_values_take_their_field_types(tmp_path):
    """YAML reads 5e-5 (an exponent without a dot) as a string: it is a number here; lists become tuples."""
    cfg = tmp_path / "t.yaml"
    cfg.write_text("tolerance: 5e-5\nsteps: 1e3\nnum_worlds: [8, 16]\n")
    a = parse(Args, ["--config", str(cfg)])
    assert a.tolerance == 5e-5 and a.steps == 1000 and isinstance(a.steps, int) and a.num_worlds == (8, 16)


@pytest.mark.parametrize("argv, message", [(["--steps", "four"], "--steps"), (["--stepz", "3"], "--stepz")])
def test_a_bad_flag_is_a_one_line_error(argv, message):
    with pytest.raises(UserError, match=message) as e:
        parse(Args, argv)
    assert "\n" not in str(e.value) and str(e.value).endswith("(see --help)")


def _arms(path):
    """An arms file of tools/layup_continue.sh: (COMMON flags, {arm: its train_llc.py flags, or for an `offline`
    arm ("offline", its skillmimic.offline_distill flags), for an `hlc` arm ("hlc", its train_hlc.py flags)}); an
    arm's leading `@gpus=LIST` (where it runs, the launcher's) is left out."""
    common, arms = [], {}
    for line in path.read_text().splitlines():
        name, *flags = line.split() or ["#"]
        if name.startswith("#"):
            continue
        if name == "COMMON":
            common = flags
        else:
            arms[name] = flags[1:] if flags and flags[0].startswith("@gpus=") else flags
    return common, arms


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "tools" / "arms").glob("*.txt")))
def test_every_arm_of_the_arms_files_parses(name):
    import sys

    sys.path.insert(0, str(ROOT))
    import train_llc

    import train_hlc

    from skillmimic import offline_distill

    common, arms = _arms(ROOT / "tools" / "arms" / name)
    assert arms
    for arm, flags in arms.items():
        if flags[:1] == ["offline"]:  # the launcher adds --motion-dir, --init-from (where absent) and --out
            init = [] if "--init-from" in flags else ["--init-from", "INIT.pt"]
            parse(offline_distill.Args, flags[1:] + init + ["--out", "OUT/policy.pt"])
        elif flags[:1] == ["hlc"]:  # a task's controller: its flags alone, the launcher adds the run's own
            parse(train_hlc.Args, flags[1:] + ["--iterations", "100000", "--run-dir", "OUT", "--overwrite"])
        else:
            parse(train_llc.Args, common + flags)


def test_round8_flags_reach_the_environment():
    import sys

    sys.path.insert(0, str(ROOT))
    import train_llc
    from skillmimic.envs.ball_noise import BallNoise
    from skillmimic.model import Physics

    common, arms = _arms(ROOT / "tools" / "arms" / "round8.txt")
    d = parse(train_llc.Args, common + arms["D"]).env
    assert d.physics == Physics(palm=True, wrist_kp=300.0, wrist_kd=30.0)
    assert d.ball_noise == BallNoise(share=0.25, pos=0.03, vel=0.5)
    a = parse(train_llc.Args, common + arms["A"]).env
    assert a.physics == Physics(palm=True) and a.ball_noise == BallNoise() and a.ball_noise.share == 0.0
    assert d.hand == "rigid" and d.adaptive_starts and d.ball_distance == 0.5  # train_llc.py's other env defaults
    kd = parse(train_llc.Args, ["--env.physics.wrist-kd", "30"]).env.physics
    assert (kd.wrist_kp, kd.wrist_kd, kd.palm) == (0.0, 30.0, True)
    with pytest.raises(UserError, match="physics wrist_kp -300.0: must be 0") as e:
        parse(train_llc.Args, ["--env.physics.wrist-kp", "-300"])
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="--env.ball-noise.share 2.0: must be within"):
        parse(train_llc.Args, ["--env.ball-noise.share", "2"])
