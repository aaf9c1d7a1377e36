"""One training step of each application, as examples/apps/steps.mjs writes it: the examples' twins, the golden losses
(test/golden/make_apps_golden.py) and the benchmark's PyTorch peer (bench/peers/torch_apps.py) all call these."""
import torch
import torch.nn.functional as F

from common import normals
from models import negative_elbo, translation_loss


def classifier_step(model, opt, x, y):
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss


def gan_step(G, D, opt_g, opt_d, real, z, labels=None):
    """real: images in [-1, 1]; z: the noise; for a conditional pair, labels (real, fake): the real images' classes and
    those asked of the generator. The discriminator learns real from fake, then the generator learns to make the
    (updated) discriminator call its images real."""
    B = real.shape[0]
    ones, zeros = torch.ones(B, device=real.device), torch.zeros(B, device=real.device)
    y_real, y_fake = labels if labels is not None else (None, None)
    fake = G(z, y_fake)
    loss_d = F.binary_cross_entropy_with_logits(D(real, y_real), ones) + F.binary_cross_entropy_with_logits(D(fake.detach(), y_fake), zeros)
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    loss_g = F.binary_cross_entropy_with_logits(D(fake, y_fake), ones)
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    return loss_d, loss_g


def vae_step(model, opt, x, eps):
    loss = negative_elbo(model(x, eps), x)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss


def translate_step(model, opt, src, tgt):
    loss = translation_loss(model, src, tgt)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss


def noise(shape, seed):
    n = 1
    for d in shape:
        n *= d
    return torch.from_numpy(normals(n, seed)).reshape(shape)
