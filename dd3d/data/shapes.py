"""Built-in procedural dataset ``shapes``: labelled-part objects sampled on primitive surfaces.

Every object class is assembled from named parts (chair = seat + back + legs, ...). A part is one
or more primitives (box, frustum/cylinder/cone, ellipsoid, torus) whose *surfaces* are sampled with
uniform density: points go to parts, and within a part to primitives, in proportion to surface
area (largest-remainder rounding), and each primitive samples its own surface uniformly.
Proportions (leg length, wing span, number of legs, shade shape, ...) are drawn per instance and
parts are jittered, so classes share primitives and silhouettes and are not trivially separable.

Objects are upright (y up, like aligned ModelNet), centred on their bounding box and scaled into
the unit ball. The box and radius come from fixed outline points of the primitives (box corners,
rim circles, ...), not from the samples, so the transform does not change with the resolution; the
farthest sample therefore has a norm of at most 1 and typically above 0.95.

Determinism: cloud ``i`` of class ``c`` in split ``s`` is fully fixed by ``(seed, s, c, i)``. Its
shape parameters come from a random stream that does not depend on ``points`` or ``per_class``, so
regenerating at another resolution gives the same object; the surface samples come from a second
stream. ``train`` and ``test`` use different streams, so they never share instances.

Part labels follow ShapeNet-part: every class owns a contiguous range of global part ids, named
``"<class>/<part>"``. Each part receives at least ``MIN_PART_POINTS`` points when
``points >= MIN_PART_POINTS * num_parts``; below that each part gets ``points // num_parts``
guaranteed points, which is 0 when ``points < num_parts`` (then the smallest parts can be absent).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from dd3d.data.base import PointCloudSet
from dd3d.errors import ConfigError

MIN_PART_POINTS = 4
SOURCE = "built-in shapes"
_SPLITS = ("train", "test")
_STREAM_SHAPE, _STREAM_SAMPLE = 0, 1


# ---------------------------------------------------------------------------------------------
# Primitives: each samples its own surface uniformly in a local frame, then is placed by
# ``rot`` (orthonormal, so density stays uniform) and ``centre``.
# ---------------------------------------------------------------------------------------------


def _rot(axis: str, angle: float) -> np.ndarray:
    """Rotation matrix by ``angle`` radians about the x, y or z axis."""
    c, s = np.cos(angle), np.sin(angle)
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    m = np.eye(3)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


# Rotations taking the local y axis (of frustums and tori) onto x, y or z.
_AXIS = {"x": _rot("z", -np.pi / 2), "y": np.eye(3), "z": _rot("x", np.pi / 2)}

_OUTLINE_STEPS = 32


def _circle(steps: int) -> np.ndarray:
    """``steps`` points of the unit circle in the xz-plane, shape (steps, 3)."""
    angle = np.linspace(0.0, 2.0 * np.pi, steps, endpoint=False)
    return np.stack([np.cos(angle), np.zeros(steps), np.sin(angle)], axis=1)


def _fibonacci_sphere(n: int) -> np.ndarray:
    """``n`` nearly evenly spread points of the unit sphere."""
    y = 1.0 - (2.0 * np.arange(n) + 1.0) / n
    angle = np.pi * (3.0 - np.sqrt(5.0)) * np.arange(n)
    ring = np.sqrt(1.0 - y**2)
    return np.stack([ring * np.cos(angle), y, ring * np.sin(angle)], axis=1)


_CUBE_CORNERS = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)])
_FIBONACCI_SPHERE = _fibonacci_sphere(256)
_RIM = _circle(_OUTLINE_STEPS)
_TUBE = _circle(8)[:, [0, 2]]


@dataclass(frozen=True, kw_only=True)
class _Primitive:
    centre: ArrayLike = (0.0, 0.0, 0.0)
    rot: np.ndarray | None = None

    def area(self) -> float:
        raise NotImplementedError

    def _local(self, rng: np.random.Generator, n: int) -> np.ndarray:
        raise NotImplementedError

    def _local_outline(self) -> np.ndarray:
        raise NotImplementedError

    def _place(self, pts: np.ndarray) -> np.ndarray:
        if self.rot is not None:
            pts = pts @ self.rot.T
        return pts + np.asarray(self.centre)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` points uniformly distributed on the placed surface, shape (n, 3)."""
        return self._place(self._local(rng, n))

    def outline(self) -> np.ndarray:
        """Fixed surface points that include (or, for curved surfaces, closely approach) the
        points farthest from any centre; used to normalise without depending on the sampling."""
        return self._place(self._local_outline())


@dataclass(frozen=True)
class _Box(_Primitive):
    """Closed box with edge lengths ``size`` centred on the origin."""

    size: tuple[float, float, float]

    def _faces(self) -> np.ndarray:
        sx, sy, sz = self.size
        return np.array([sy * sz, sx * sz, sx * sy])  # faces normal to x, y, z (one side)

    def area(self) -> float:
        return 2.0 * float(self._faces().sum())

    def _local(self, rng: np.random.Generator, n: int) -> np.ndarray:
        faces = self._faces()
        axis = rng.choice(3, size=n, p=faces / faces.sum())
        pts = rng.uniform(-0.5, 0.5, (n, 3))
        pts[np.arange(n), axis] = rng.choice([-0.5, 0.5], size=n)
        return pts * np.asarray(self.size)

    def _local_outline(self) -> np.ndarray:
        return _CUBE_CORNERS * np.asarray(self.size)


@dataclass(frozen=True)
class _Frustum(_Primitive):
    """Truncated cone along y, y in [-h/2, h/2], radius ``r0`` at the bottom and ``r1`` at the top.

    Cylinders (r0 == r1) and cones (r1 == 0) are special cases; caps are optional discs.
    """

    r0: float
    r1: float
    h: float
    bottom: bool = True
    top: bool = True

    def _areas(self) -> np.ndarray:
        lateral = np.pi * (self.r0 + self.r1) * np.hypot(self.h, self.r0 - self.r1)
        return np.array([lateral, np.pi * self.r0**2 * self.bottom, np.pi * self.r1**2 * self.top])

    def area(self) -> float:
        return float(self._areas().sum())

    def _local(self, rng: np.random.Generator, n: int) -> np.ndarray:
        areas = self._areas()
        surface = rng.choice(3, size=n, p=areas / areas.sum())
        u = rng.uniform(size=n)
        theta = rng.uniform(0.0, 2.0 * np.pi, n)
        # Lateral: the density along the axis grows with the radius, so invert r^2 linearly.
        if abs(self.r0 - self.r1) < 1e-9:
            radius, t = np.full(n, self.r0), u
        else:
            radius = np.sqrt(self.r0**2 + u * (self.r1**2 - self.r0**2))
            t = (radius - self.r0) / (self.r1 - self.r0)
        y = (t - 0.5) * self.h
        caps = surface > 0
        cap_r = np.where(surface == 1, self.r0, self.r1)
        radius = np.where(caps, cap_r * np.sqrt(u), radius)
        y = np.where(surface == 1, -0.5 * self.h, np.where(surface == 2, 0.5 * self.h, y))
        return np.stack([radius * np.cos(theta), y, radius * np.sin(theta)], axis=1)

    def _local_outline(self) -> np.ndarray:
        rims = [_RIM * r + (0.0, y, 0.0)
                for r, y in ((self.r0, -self.h / 2), (self.r1, self.h / 2))]
        return np.concatenate(rims)


def _rejection(draw: Callable[[int], tuple[np.ndarray, np.ndarray]], rng: np.random.Generator,
               n: int) -> np.ndarray:
    """Collect ``n`` points from ``draw(m) -> (points, acceptance in [0, 1])`` by rejection."""
    chunks, need = [], n
    while need > 0:
        pts, accept = draw(2 * need + 16)
        kept = pts[rng.uniform(size=len(pts)) < accept][:need]
        chunks.append(kept)
        need -= len(kept)
    return np.concatenate(chunks) if chunks else np.empty((0, 3))


@dataclass(frozen=True)
class _Ellipsoid(_Primitive):
    """Ellipsoid with semi-axes ``axes`` (area by Thomsen's formula, within about 1 %)."""

    axes: tuple[float, float, float]

    def area(self) -> float:
        a, b, c = self.axes
        p = 1.6075
        mean = ((a * b) ** p + (a * c) ** p + (b * c) ** p) / 3.0
        return float(4.0 * np.pi * mean ** (1.0 / p))

    def _local(self, rng: np.random.Generator, n: int) -> np.ndarray:
        a, b, c = self.axes
        stretch = np.array([b * c, a * c, a * b])  # area element of the map sphere -> ellipsoid

        def draw(m: int) -> tuple[np.ndarray, np.ndarray]:
            u = rng.normal(size=(m, 3))
            u /= np.linalg.norm(u, axis=1, keepdims=True)
            return u * np.asarray(self.axes), np.linalg.norm(u * stretch, axis=1) / stretch.max()

        return _rejection(draw, rng, n)

    def _local_outline(self) -> np.ndarray:
        return _FIBONACCI_SPHERE * np.asarray(self.axes)


@dataclass(frozen=True)
class _Torus(_Primitive):
    """Torus around the y axis (ring radius ``R``, tube radius ``r``), ring angles from ``start``
    over ``arc`` radians measured in the xz-plane from +x."""

    R: float
    r: float
    arc: float = 2.0 * np.pi
    start: float = 0.0

    def area(self) -> float:
        return float(self.arc * self.R * 2.0 * np.pi * self.r)

    def _local(self, rng: np.random.Generator, n: int) -> np.ndarray:
        def draw(m: int) -> tuple[np.ndarray, np.ndarray]:
            theta = self.start + rng.uniform(0.0, self.arc, m)
            phi = rng.uniform(0.0, 2.0 * np.pi, m)
            ring = self.R + self.r * np.cos(phi)
            pts = np.stack([ring * np.cos(theta), self.r * np.sin(phi), ring * np.sin(theta)], 1)
            return pts, ring / (self.R + self.r)

        return _rejection(draw, rng, n)

    def _local_outline(self) -> np.ndarray:
        theta = self.start + np.linspace(0.0, self.arc, _OUTLINE_STEPS)
        tube = _TUBE * self.r + (self.R, 0.0)  # (ring offset, height) around the tube
        rings = [np.stack([np.cos(theta) * d, np.full(len(theta), y), np.sin(theta) * d], axis=1)
                 for d, y in tube]
        return np.concatenate(rings)


def _cyl(r: float, h: float, centre: ArrayLike, axis: str = "y", r1: float | None = None,
         bottom: bool = True, top: bool = True) -> _Frustum:
    """A cylinder (or frustum/cone when ``r1`` is given) along ``axis`` centred on ``centre``."""
    return _Frustum(r, r if r1 is None else r1, h, bottom, top,
                    centre=np.asarray(centre, dtype=float), rot=_AXIS[axis])


# ---------------------------------------------------------------------------------------------
# Class builders: rng -> one list of primitives per part (in the order of the class's parts).
# All sizes are in arbitrary units; objects are normalised afterwards.
# ---------------------------------------------------------------------------------------------

Parts = list[list[_Primitive]]


def _at(rng: np.random.Generator, x: float, y: float, z: float, jitter: float = 0.03) -> np.ndarray:
    """The point (x, y, z) plus Gaussian placement jitter."""
    return np.array([x, y, z]) + rng.normal(0.0, jitter, 3)


def _legs(rng: np.random.Generator, feet: list[tuple[float, float]], length: float,
          thick: float) -> list[_Primitive]:
    """Vertical legs from the floor (y=0) up to ``length``, round or square, at ``feet`` (x, z)."""
    round_legs = rng.uniform() < 0.5
    legs = []
    for x, z in feet:
        c = _at(rng, x, length / 2, z, 0.015)
        legs.append(_cyl(thick / 2, length, c) if round_legs
                    else _Box((thick, length, thick), centre=c))
    return legs


def _corner_feet(rng: np.random.Generator, w: float, d: float,
                 inset: float) -> list[tuple[float, float]]:
    """Four corner feet, or three (two at the back, one in front) one time in four."""
    x, z = w / 2 - inset, d / 2 - inset
    if rng.uniform() < 0.25:
        return [(-x, -z), (x, -z), (0.0, z)]
    return [(-x, -z), (x, -z), (-x, z), (x, z)]


def _framed_box(size: tuple[float, float, float], origin: np.ndarray, rot: np.ndarray,
                local: tuple[float, float, float]) -> _Box:
    """A box centred at ``local`` in the frame (``origin``, ``rot``) and rotated with it."""
    return _Box(size, centre=origin + rot @ np.asarray(local), rot=rot)


def _rod(start: np.ndarray, tilt: float, length: float, radius: float,
         heading: float = 0.0) -> tuple[_Frustum, np.ndarray]:
    """An open tube from ``start`` tilted by ``tilt`` from +y towards +x, then turned by
    ``heading`` about y; and its far end."""
    rot = _rot("y", heading) @ _rot("z", -tilt)
    direction = rot[:, 1]
    centre = start + direction * length / 2
    rod = _Frustum(radius, radius, length, False, False, centre=centre, rot=rot)
    return rod, 2 * centre - start


def _spokes(rng: np.random.Generator, n: int, size: tuple[float, float, float], inner: float,
            y: float) -> list[_Primitive]:
    """``n`` boxes (radial length ``size[0]``) evenly turned about the y axis, ``inner`` from it."""
    mid = inner + size[0] / 2
    angles = rng.uniform(0.0, 2.0 * np.pi) + 2.0 * np.pi * np.arange(n) / n
    return [_Box(size, centre=_at(rng, mid * np.cos(a), y, -mid * np.sin(a), 0.01),
                 rot=_rot("y", a)) for a in angles]


def _pedestal(rng: np.random.Generator, height: float, spread: float) -> list[_Primitive]:
    """A column up to ``height`` on a round foot or a five-spoke star of radius ``spread``."""
    foot = rng.uniform(0.03, 0.08)
    column = [_cyl(rng.uniform(0.03, 0.12), height - foot, (0, (height + foot) / 2, 0),
                   bottom=False, top=False)]
    if rng.uniform() < 0.5:
        return column + _spokes(rng, 5, (spread, foot, 0.06), 0.0, foot / 2)
    return column + [_cyl(spread, foot, (0, foot / 2, 0), r1=spread * rng.uniform(0.3, 1.0))]


def _airplane(rng: np.random.Generator) -> Parts:
    u = rng.uniform
    length, fr = u(3.0, 5.0), u(0.18, 0.35)
    if u() < 0.5:  # cigar
        fuselage = [_Ellipsoid((fr, fr * u(0.9, 1.2), length / 2))]
    else:  # tail cone, tube, nose cone
        tail_l, nose_l = length * u(0.15, 0.3), length * u(0.08, 0.2)
        tube_l = length - tail_l - nose_l
        fuselage = [
            _cyl(fr * u(0.2, 0.5), tail_l, (0, 0, (tail_l - length) / 2), "z", r1=fr, top=False),
            _cyl(fr, tube_l, (0, 0, tail_l + (tube_l - length) / 2), "z", bottom=False, top=False),
            _cyl(fr, nose_l, (0, 0, (length - nose_l) / 2), "z", r1=fr * u(0.1, 0.3), bottom=False),
        ]
    if u() < 0.2:  # delta
        span, chord, sweep = u(2.0, 3.5), u(1.2, 2.0), u(0.6, 0.9)
    else:
        span, chord, sweep = u(2.5, 5.5), u(0.4, 1.0), u(0.0, 0.7)
    wy, wz, half = u(-0.5, 0.5) * fr, u(-0.1, 0.3) * length / 2, span / 2
    root = _at(rng, half / 2 * np.cos(sweep), wy, wz - half / 2 * np.sin(sweep))
    wings = [_Box((half, 0.06, chord), centre=root * (side, 1, 1), rot=_rot("y", side * sweep))
             for side in (-1, 1)]
    fin_h, fin_c, tail_span = u(0.5, 1.2), u(0.4, 0.8), u(0.25, 0.45) * span
    tail_z = (fin_c - length) / 2
    tail = [_Box((0.05, fin_h, fin_c), centre=_at(rng, 0, fr + fin_h / 2 - 0.05, tail_z)),
            _Box((tail_span, 0.05, fin_c * u(0.6, 1.0)),
                 centre=_at(rng, 0, u(0.0, 0.9) * fin_h, tail_z))]
    eng_r, eng_l, kind = u(0.08, 0.18), u(0.5, 1.0), u()
    if kind < 0.2:  # propeller: hub and blade on the nose
        hub = _cyl(fr * u(0.3, 0.6), eng_l / 2, (0, 0, (length + eng_l / 2) / 2), "z")
        engines = [hub, _Box((u(0.8, 1.6), 0.1, 0.03), centre=(0, 0, (length + eng_l) / 2))]
    elif kind < 0.4:  # two engines on the rear fuselage
        z = -length / 2 + length * u(0.15, 0.3)
        engines = [_cyl(eng_r, eng_l, _at(rng, s * (fr + eng_r + 0.05), fr * 0.3, z), "z")
                   for s in (-1, 1)]
    else:  # two or four under the wings
        stations = [u(0.12, 0.2)] if u() < 0.6 else [u(0.1, 0.16), u(0.26, 0.36)]
        engines = [_cyl(eng_r, eng_l, _at(rng, side * s * span, wy - eng_r - 0.05,
                                          wz - s * span * np.tan(sweep) + 0.3 * chord), "z")
                   for side in (-1, 1) for s in stations]
    return [fuselage, wings, tail, engines]


def _bed(rng: np.random.Generator) -> Parts:
    u = rng.uniform
    length, width, th, leg = u(1.8, 2.4), u(0.8, 2.0), u(0.15, 0.5), u(0.05, 0.6)
    mattress = [_Box((width, th, length), centre=_at(rng, 0, leg + th / 2, 0))]
    ht, bottom = u(0.05, 0.15), leg * u(0.0, 1.0)
    top = leg + th + u(0.3, 1.1)
    head = [_Box((width * u(0.95, 1.1), top - bottom, ht),
                 centre=_at(rng, 0, (top + bottom) / 2, -length / 2 - ht / 2))]
    feet = [(x * (width / 2 - 0.08), z * (length / 2 - 0.08)) for x in (-1, 1) for z in (-1, 1)]
    posts = leg + th + u(0.4, 1.2) if u() < 0.25 else leg  # four-poster or plain legs
    return [mattress, head, _legs(rng, feet, posts, u(0.06, 0.15))]


def _bottle(rng: np.random.Generator) -> Parts:
    u = rng.uniform
    rb, hb, rn = u(0.2, 0.5), u(0.8, 2.5), u(0.06, 0.18)
    kind, base = rng.integers(3), hb
    if kind == 0:  # round
        body = [_cyl(rb, hb, (0, hb / 2, 0), top=False)]
        shoulder = rb
    elif kind == 1:  # square
        body = [_Box((1.6 * rb, hb, 1.6 * rb), centre=(0, hb / 2, 0))]
        shoulder = 0.8 * rb
    else:  # flask: the neck starts where the ellipsoid is as wide as the shoulder
        body = [_Ellipsoid((rb, hb / 2, rb * u(0.8, 1.0)), centre=(0, hb / 2, 0))]
        shoulder = max(rn, u(0.3, 0.5) * rb)  # rn < 0.2 <= rb: the neck fits
        base = hb / 2 * (1 + np.sqrt(1 - (shoulder / rb) ** 2))
    sh, nh, ch = u(0.05, 0.8), u(0.1, 0.6), u(0.05, 0.25)
    neck = [_cyl(shoulder, sh, _at(rng, 0, base + sh / 2, 0, 0.0), r1=rn, bottom=False, top=False),
            _cyl(rn, nh, _at(rng, 0, base + sh + nh / 2, 0, 0.01), bottom=False, top=False)]
    cap = [_cyl(rn * u(1.05, 1.3), ch, _at(rng, 0, base + sh + nh + ch / 2, 0, 0.01))]
    if kind != 2 and u() < 0.25:  # jug: a handle on the body
        ring = hb * u(0.12, 0.25)
        body.append(_Torus(ring, u(0.03, 0.06), np.pi, -np.pi / 2, rot=_rot("x", np.pi / 2),
                           centre=_at(rng, shoulder, hb - ring * u(1.0, 1.5), 0)))
    return [body, neck, cap]


def _car(rng: np.random.Generator) -> Parts:
    u = rng.uniform
    w, h, length, wr = u(0.8, 1.2), u(0.3, 0.6), u(1.8, 3.0), u(0.2, 0.35)
    y0 = wr * u(0.4, 0.8)
    body = [_Box((w, h, length), centre=_at(rng, 0, y0 + h / 2, 0))]
    ch, cl = u(0.2, 0.7), length * u(0.3, 0.9)
    cabin = [_Box((w * u(0.75, 0.95), ch, cl),
                  centre=_at(rng, 0, y0 + h + ch / 2, u(-0.5, 0.5) * (length - cl)))]
    ww, wz = u(0.12, 0.25), u(0.28, 0.38) * length
    torus = u() < 0.5
    axles = [-wz, wz] if u() < 0.8 else [-wz, 2.2 * wr - wz, wz]  # cars and six-wheel trucks
    wheels = []
    for x in (-1, 1):
        for z in axles:
            c = _at(rng, x * (w / 2 + ww / 2 - 0.05), wr, z)
            wheels.append(_Torus(wr - ww / 2, ww / 2, centre=c, rot=_AXIS["x"]) if torus
                          else _cyl(wr, ww, c, "x"))
    return [body, cabin, wheels]


def _chair(rng: np.random.Generator) -> Parts:
    u = rng.uniform
    w, d, th, hs = u(0.8, 1.2), u(0.8, 1.2), u(0.06, 0.18), u(0.7, 1.2)
    if u() < 0.25:  # round seat, legs inside it
        w = d = min(w, d)
        seat = [_cyl(w / 2, th, _at(rng, 0, hs, 0))]
        feet = _corner_feet(rng, w / np.sqrt(2), d / np.sqrt(2), u(0.03, 0.08))
    else:
        seat = [_Box((w, th, d), centre=_at(rng, 0, hs, 0))]
        feet = _corner_feet(rng, w, d, u(0.03, 0.12))
    hb, tb, bw = u(0.1, 1.3), u(0.05, 0.15), w * u(0.6, 1.0)
    origin, rot = _at(rng, 0, hs + th / 2, -d / 2 + tb / 2), _rot("x", -u(0.0, 0.3))
    if u() < 0.6:  # solid
        back = [_framed_box((bw, hb, tb), origin, rot, (0, hb / 2, 0))]
    else:  # top rail and vertical slats
        rail, n = hb * u(0.15, 0.3), int(rng.integers(3, 6))
        sw = bw / (2 * n)
        back = [_framed_box((bw, rail, tb), origin, rot, (0, hb - rail / 2, 0))]
        back += [_framed_box((sw, hb - rail, tb * 0.7), origin, rot, (x, (hb - rail) / 2, 0))
                 for x in np.linspace(sw / 2 - bw / 2, bw / 2 - sw / 2, n)]
    if u() < 0.2:  # office chair
        legs = _pedestal(rng, hs - th / 2, min(w, d) * u(0.35, 0.55))
    else:
        legs = _legs(rng, feet, hs - th / 2, u(0.05, 0.14))
    return [seat, back, legs]


def _guitar(rng: np.random.Generator) -> Parts:
    u = rng.uniform
    r1, t = u(0.35, 0.55), u(0.1, 0.25)
    r2 = r1 * u(0.6, 0.9)
    if u() < 0.6:  # acoustic: two bouts
        gap = r1 * u(0.8, 1.2)
        body = [_cyl(r1, t, (0, 0, 0), "z"), _cyl(r2, t, _at(rng, 0, gap, 0), "z")]
        top = gap + r2 * 0.8
    else:  # electric: slab with a horn
        bw, bh = 2 * r1 * u(0.8, 1.0), 2 * r1 * u(0.9, 1.2)
        horn = _at(rng, rng.choice([-1, 1]) * bw * 0.3, bh / 2, 0)
        body = [_Box((bw, bh, t * 0.6), centre=(0, 0, 0)), _cyl(r2 * 0.6, t * 0.6, horn, "z")]
        top = bh / 2
    nl, hl = u(0.9, 1.6), u(0.2, 0.4)
    y = top + nl / 2
    neck = [_Box((u(0.08, 0.14), nl, 0.06), centre=_at(rng, 0, y, 0.03, 0.01))]
    head = [_Box((u(0.15, 0.25), hl, 0.05), centre=_at(rng, 0, y + nl / 2 + hl / 2, 0.0),
                 rot=_rot("x", -u(0.0, 0.3)))]
    return [body, neck, head]


def _lamp(rng: np.random.Generator) -> Parts:
    u = rng.uniform
    r0, bh, pr = u(0.08, 0.45), u(0.02, 0.2), u(0.015, 0.07)
    if u() < 0.25:  # tripod: three splayed rods meeting under the pole
        bh, splay = u(0.3, 0.8), u(0.2, 0.6)
        base = [_rod(np.array([0.0, bh, 0.0]), np.pi - splay, bh / np.cos(splay), pr, a)[0]
                for a in u(0.0, 2.0 * np.pi) + 2.0 * np.pi * np.arange(3) / 3]
    else:
        base = [_cyl(r0, bh, _at(rng, 0, bh / 2, 0, 0.0), r1=r0 * u(0.5, 1.0))]
    kind, sh = rng.integers(4), u(0.25, 0.6)
    if kind == 3:  # desk lamp: jointed arm, cone pointing down
        lower, joint = _rod(np.array([0.0, bh, 0.0]), u(-0.4, 0.2), u(0.4, 0.9), pr)
        upper, tip = _rod(joint, u(0.6, 1.6), u(0.4, 0.9), pr)
        return [base, [lower, upper],
                [_cyl(u(0.15, 0.35), sh, tip - (0, sh / 2, 0), r1=u(0.03, 0.1), bottom=False)]]
    ph = u(0.8, 2.0)
    pole = [_cyl(pr, ph, _at(rng, 0, bh + ph / 2, 0), bottom=False, top=False)]
    top = bh + ph
    if kind == 0:  # open shade, wide at the bottom
        shade = [_cyl(u(0.25, 0.6), sh, _at(rng, 0, top, 0), r1=u(0.1, 0.35),
                                        bottom=False, top=False)]
    elif kind == 1:  # globe
        shade = [_Ellipsoid((sh * u(0.5, 0.9), sh * u(0.5, 1.0), sh * u(0.5, 0.9)),
                            centre=_at(rng, 0, top + sh / 3, 0))]
    else:  # uplighter bowl, wide at the top
        shade = [_cyl(u(0.05, 0.2), sh, _at(rng, 0, top + sh / 2, 0), r1=u(0.25, 0.6), top=False)]
    return [base, pole, shade]


def _mug(rng: np.random.Generator) -> Parts:
    u = rng.uniform
    r0, h = u(0.25, 0.5), u(0.4, 1.4)
    r1 = r0 * u(0.8, 1.2)
    body = [_cyl(r0, h, (0, h / 2, 0), r1=r1, top=False)]
    wall, ring, tube, cy = (r0 + r1) / 2, h * u(0.2, 0.35), u(0.03, 0.07), h * u(0.4, 0.6)
    if u() < 0.65:  # round handle
        c = _at(rng, wall + ring * u(0.0, 0.4), cy, 0)
        handle = [_Torus(ring, tube, np.pi, -np.pi / 2, centre=c, rot=_rot("x", np.pi / 2))]
    else:  # square handle: two arms and a grip
        ext = ring * u(1.0, 1.6)
        arm, grip = (ext, 2 * tube, 2 * tube), (2 * tube, 2 * (ring + tube), 2 * tube)
        handle = [_Box(arm, centre=_at(rng, wall + ext / 2, cy + s * ring, 0)) for s in (-1, 1)]
        handle.append(_Box(grip, centre=_at(rng, wall + ext, cy, 0)))
    return [body, handle]


def _rocket(rng: np.random.Generator) -> Parts:
    u = rng.uniform
    r, h, nh = u(0.2, 0.45), u(1.0, 3.5), u(0.3, 1.0)
    if u() < 0.6:  # one stage
        body = [_cyl(r, h, (0, h / 2, 0), top=False)]
        rt = r
    else:  # narrower upper stage above a conical adapter
        h1, rt, th = h * u(0.4, 0.7), r * u(0.55, 0.85), u(0.05, 0.3)
        body = [_cyl(r, h1, (0, h1 / 2, 0), top=False),
                _cyl(r, th, (0, h1 + th / 2, 0), r1=rt, bottom=False, top=False),
                _cyl(rt, h - h1 - th, (0, (h + h1 + th) / 2, 0), bottom=False, top=False)]
    c = _at(rng, 0, h, 0, 0.01)
    if u() < 0.5:  # cone
        nose = [_cyl(rt, nh, c + (0, nh / 2, 0), r1=0.0, bottom=False)]
    else:  # ogive-like: two frustums
        nose = [_cyl(rt, 0.45 * nh, c + (0, 0.225 * nh, 0), r1=0.7 * rt, bottom=False, top=False),
                _cyl(0.7 * rt, 0.55 * nh, c + (0, 0.725 * nh, 0), r1=0.0, bottom=False)]
    n_fins, span, fh = rng.choice([3, 4]), u(0.05, 0.5), u(0.15, 0.8)
    fins = _spokes(rng, n_fins, (span, fh, 0.03), r, fh / 2 + u(0.0, 0.3))
    if u() < 0.3:  # strap-on boosters with conical tops
        br, bh = r * u(0.3, 0.5), h * u(0.3, 0.6)
        n = rng.integers(2, 5)
        for a in u(0.0, 2.0 * np.pi) + 2.0 * np.pi * np.arange(n) / n:
            xz = (r + br) * np.array([np.cos(a), 0.0, np.sin(a)])
            body += [_cyl(br, bh, xz + (0, bh / 2, 0), top=False),
                     _cyl(br, 2 * br, xz + (0, bh + br, 0), r1=0.0, bottom=False)]
    return [body, nose, fins]


def _sofa(rng: np.random.Generator) -> Parts:
    u = rng.uniform
    w, sh, d = u(1.6, 2.8), u(0.3, 0.6), u(0.7, 1.0)
    seat = [_Box((w, sh, d), centre=_at(rng, 0, sh / 2, 0))]
    if u() < 0.3:  # corner sofa: a chaise in front of one end
        cw, cd = w * u(0.3, 0.45), u(0.6, 1.0)
        x = rng.choice([-1, 1]) * (w - cw) / 2
        seat.append(_Box((cw, sh, cd), centre=_at(rng, x, sh / 2, (d + cd) / 2)))
    hb, tb = u(0.3, 0.8), u(0.1, 0.25)
    back = [_Box((w, sh + hb, tb), centre=_at(rng, 0, (sh + hb) / 2, -d / 2 - tb / 2))]
    ta, ha = u(0.05, 0.3), sh + u(-0.1, 0.35)
    rolled = u() < 0.4
    arms = []
    for s in (-1, 1):
        x = s * (w / 2 + ta / 2)
        if rolled:  # box topped by a roll along z
            low = ha - ta / 2
            arms += [_Box((ta, low, d + tb), centre=_at(rng, x, low / 2, -tb / 2)),
                     _cyl(ta / 2 * u(1.0, 1.4), d + tb, _at(rng, x, low, -tb / 2), "z")]
        else:
            arms.append(_Box((ta, ha, d + tb), centre=_at(rng, x, ha / 2, -tb / 2)))
    return [seat, back, arms]


def _stool(rng: np.random.Generator) -> Parts:
    u = rng.uniform
    r, th, hs = u(0.2, 0.55), u(0.04, 0.15), u(0.4, 1.3)
    c = _at(rng, 0, hs - th / 2, 0)
    if u() < 0.6:
        seat = [_cyl(r, th, c)]
        half = r / np.sqrt(2)
    else:
        half = 0.9 * r
        seat = [_Box((2 * half, th, 2 * half), centre=c)]
    inset, thick = u(0.02, 0.08), u(0.04, 0.1)
    if u() < 0.3:  # bar stool
        return [seat, _pedestal(rng, hs - th, r * u(0.6, 1.0))]
    legs = _legs(rng, _corner_feet(rng, 2 * half, 2 * half, inset), hs - th, thick)
    if u() < 0.4:  # footrest ring through the legs
        ring = _at(rng, 0, hs * u(0.25, 0.45), 0)
        legs.append(_Torus((half - inset) * np.sqrt(2), thick / 3, centre=ring))
    return [seat, legs]


def _table(rng: np.random.Generator) -> Parts:
    u = rng.uniform
    w, th, ht = u(0.5, 2.4), u(0.04, 0.15), u(0.5, 1.3)
    d = w * u(0.4, 1.0)
    c, leg = _at(rng, 0, ht - th / 2, 0), ht - th
    if u() < 0.3:  # round top
        top = [_cyl(d * 0.7, th, c)]
        w = d = d * 1.4 / np.sqrt(2)
    else:
        top = [_Box((w, th, d), centre=c)]
    kind = u()
    if kind < 0.6:
        legs = _legs(rng, _corner_feet(rng, w, d, u(0.05, 0.2)), leg, u(0.05, 0.14))
    elif kind < 0.8:
        legs = _pedestal(rng, leg, min(w, d) * u(0.2, 0.45))
    else:  # trestle: two slabs near the ends
        slab = (u(0.04, 0.12), leg, d * u(0.6, 0.9))
        legs = [_Box(slab, centre=_at(rng, s * (w / 2 - u(0.05, 0.25)), leg / 2, 0))
                for s in (-1, 1)]
    return [top, legs]


def _tree(rng: np.random.Generator) -> Parts:
    u = rng.uniform
    tr, th = u(0.03, 0.15), u(0.2, 1.5)
    trunk = [_cyl(tr, th, _at(rng, 0, th / 2, 0, 0.0), bottom=False, top=False)]
    if u() < 0.4:  # root flare
        fh = u(0.03, 0.15)
        trunk.append(_cyl(tr * u(1.5, 3.0), fh, (0, fh / 2, 0), r1=tr, top=False))
    kind = rng.integers(3)
    if kind == 0:  # broadleaf
        a, b = u(0.4, 0.9), u(0.4, 1.3)
        crown = [_Ellipsoid((a, b, a * u(0.8, 1.2)), centre=_at(rng, 0, th + b * 0.8, 0))]
    elif kind == 1:  # conifer, one or two stacked cones
        r, h = u(0.4, 0.9), u(0.8, 2.0)
        crown = [_cyl(r, h, _at(rng, 0, th + h / 2, 0), r1=0.0, bottom=u() < 0.5)]
        if u() < 0.5:
            crown.append(_cyl(r * 0.7, h * 0.7, _at(rng, 0, th + h * 0.75, 0), r1=0.0))
    else:  # cluster of spheres
        big = u(0.3, 0.6)
        crown = [_Ellipsoid((s, s, s), centre=_at(rng, 0, th + big, 0, 0.6 * big))
                 for s in big * u(0.6, 0.9, int(rng.integers(3, 6)))]
    return [trunk, crown]


_CLASSES: dict[str, tuple[tuple[str, ...], Callable[[np.random.Generator], Parts]]] = {
    "airplane": (("fuselage", "wings", "tail", "engines"), _airplane),
    "bed": (("mattress", "headboard", "legs"), _bed),
    "bottle": (("body", "neck", "cap"), _bottle),
    "car": (("body", "cabin", "wheels"), _car),
    "chair": (("seat", "back", "legs"), _chair),
    "guitar": (("body", "neck", "head"), _guitar),
    "lamp": (("base", "pole", "shade"), _lamp),
    "mug": (("body", "handle"), _mug),
    "rocket": (("body", "nose", "fins"), _rocket),
    "sofa": (("seat", "back", "arms"), _sofa),
    "stool": (("seat", "legs"), _stool),
    "table": (("top", "legs"), _table),
    "tree": (("trunk", "crown"), _tree),
}

CLASS_NAMES: list[str] = list(_CLASSES)
_PART_OFFSETS: list[int] = np.cumsum([0] + [len(p) for p, _ in _CLASSES.values()]).tolist()


def part_table() -> tuple[list[str], dict[int, list[int]]]:
    """Global part names (``"chair/seat"``, ...) and class index -> its sorted global part ids."""
    names = [f"{cls}/{part}" for cls, (parts, _) in _CLASSES.items() for part in parts]
    ranges = {c: list(range(start, stop))
              for c, (start, stop) in enumerate(zip(_PART_OFFSETS, _PART_OFFSETS[1:]))}
    return names, ranges


# ---------------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------------


def _allocate(weights: np.ndarray, total: int, minimum: int) -> np.ndarray:
    """Split ``total`` into ``minimum`` each plus the rest in proportion to ``weights``
    (largest-remainder rounding, ties to the lower index)."""
    rest = total - minimum * len(weights)
    quota = rest * weights / weights.sum()
    counts = np.floor(quota).astype(np.int64)
    order = np.argsort(counts - quota, kind="stable")  # largest fractional part first
    counts[order[: rest - counts.sum()]] += 1
    return counts + minimum


def _rng(seed: int, split: str, class_index: int, instance: int,
         stream: int) -> np.random.Generator:
    """The random stream ``stream`` of one instance; independent of every other argument set."""
    key = (_SPLITS.index(split), class_index, instance, stream)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _check(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{SOURCE}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _sample(parts: Parts, points: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``points`` surface points of ``parts`` in random order, and each point's part index."""
    areas = [np.array([prim.area() for prim in prims]) for prims in parts]
    part_counts = _allocate(np.array([a.sum() for a in areas]), points,
                            min(MIN_PART_POINTS, points // len(parts)))
    xyz = np.concatenate([prim.sample(rng, m)
                          for prims, a, n in zip(parts, areas, part_counts)
                          for prim, m in zip(prims, _allocate(a, int(n), 0))])
    order = rng.permutation(points)
    return xyz[order], np.repeat(np.arange(len(parts)), part_counts)[order]


def _normalise(xyz: np.ndarray, parts: Parts) -> np.ndarray:
    """Centre ``xyz`` on the bounding box of the parts' outlines and scale it into the unit ball.

    The outlines do not depend on the sampling, so neither does the transform, except in the rare
    case where a sampled point lies slightly beyond an outline of a curved primitive.
    """
    outline = np.concatenate([prim.outline() for prims in parts for prim in prims])
    centre = (outline.min(axis=0) + outline.max(axis=0)) / 2
    xyz = xyz - centre
    radius = max(np.linalg.norm(outline - centre, axis=1).max(), np.linalg.norm(xyz, axis=1).max())
    return xyz / radius


def make_cloud(class_index: int, instance: int, points: int, seed: int,
               split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """One cloud: ``(points, 3)`` float32 coordinates and ``(points,)`` int64 global part ids.

    The object is fixed by ``(seed, split, class_index, instance)``; ``points`` only changes how
    densely its surface is sampled. Points are in random order (any prefix is a uniform subsample).
    """
    if split not in _SPLITS:
        raise ConfigError(f"{SOURCE}: split must be one of {', '.join(_SPLITS)}, got {split!r}")
    if not 0 <= class_index < len(CLASS_NAMES):
        raise ConfigError(
            f"{SOURCE}: class index must be in 0..{len(CLASS_NAMES) - 1}, got {class_index}"
        )
    points, seed = _check("points", points, 1), _check("seed", seed, 0)
    instance = _check("instance", instance, 0)
    build = _CLASSES[CLASS_NAMES[class_index]][1]
    parts = build(_rng(seed, split, class_index, instance, _STREAM_SHAPE))
    xyz, ids = _sample(parts, points, _rng(seed, split, class_index, instance, _STREAM_SAMPLE))
    return _normalise(xyz, parts).astype(np.float32), ids + _PART_OFFSETS[class_index]


def build_shapes(split: str, per_class: int, points: int, seed: int) -> PointCloudSet:
    """``per_class`` clouds of every class in ``CLASS_NAMES`` (class-major order), each with
    ``points`` surface points and global part labels; train and test never share instances.

    Cloud ``i`` of a class is the same object whatever ``per_class`` and ``points`` are.
    """
    per_class = _check("per_class", per_class, 1)
    clouds = [make_cloud(c, i, points, seed, split)
              for c in range(len(CLASS_NAMES)) for i in range(per_class)]
    part_names, category_parts = part_table()
    return PointCloudSet(
        points=np.stack([xyz for xyz, _ in clouds]),
        labels=np.repeat(np.arange(len(CLASS_NAMES)), per_class),
        class_names=list(CLASS_NAMES),
        parts=np.stack([ids for _, ids in clouds]),
        part_names=part_names,
        category_parts=category_parts,
        source=SOURCE,
        layout="built-in procedural shapes (generated in memory)",
        names=[f"{name}_{i:04d}" for name in CLASS_NAMES for i in range(per_class)],
    )
