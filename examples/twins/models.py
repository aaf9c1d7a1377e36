"""PyTorch twins of examples/apps/models.mjs: the same modules under the same names (so the same state-dict keys), the
same forward, the same losses."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, in_c, out_c, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_c, out_c, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_c)
        self.conv2 = nn.Conv2d(out_c, out_c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_c)
        self.downsample = (
            nn.Sequential(nn.Conv2d(in_c, out_c, 1, stride=stride, bias=False), nn.BatchNorm2d(out_c))
            if stride != 1 or in_c != out_c else None
        )

    def forward(self, x):
        h = self.bn2(self.conv2(self.bn1(self.conv1(x)).relu()))
        return (h + (self.downsample(x) if self.downsample is not None else x)).relu()


class ResNet(nn.Module):
    def __init__(self, width=16, classes=10):
        super().__init__()
        a, b, c = width, 2 * width, 4 * width
        self.conv1 = nn.Conv2d(1, a, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(a)
        self.layer1 = BasicBlock(a, a, 1)
        self.layer2 = BasicBlock(a, b, 2)
        self.layer3 = BasicBlock(b, c, 2)
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        h = self.bn1(self.conv1(x)).relu()
        h = self.layer3(self.layer2(self.layer1(h)))
        return self.fc(h.mean([2, 3]))


class Generator(nn.Module):
    def __init__(self, nz=64, width=32, classes=0):
        super().__init__()
        self.nz, self.classes = nz, classes
        if classes:
            self.embed = nn.Embedding(classes, classes)
        self.net = nn.Sequential(
            nn.ConvTranspose2d(nz + classes, 4 * width, 7, bias=False), nn.BatchNorm2d(4 * width), nn.ReLU(),
            nn.ConvTranspose2d(4 * width, 2 * width, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, 1, 3, padding=1), nn.Tanh(),
        )

    def forward(self, z, y=None):
        h = torch.cat([z, self.embed(y)], 1) if self.classes else z
        return self.net(h.reshape(z.shape[0], self.nz + self.classes, 1, 1))


class Discriminator(nn.Module):
    def __init__(self, width=32, classes=0):
        super().__init__()
        self.classes = classes
        if classes:
            self.embed = nn.Embedding(classes, 784)
        self.net = nn.Sequential(
            nn.Conv2d(2 if classes else 1, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 4 * width, 3, padding=1, bias=False), nn.BatchNorm2d(4 * width), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * width, 1, 7),
        )

    def forward(self, x, y=None):
        h = torch.cat([x, self.embed(y).reshape(x.shape[0], 1, 28, 28)], 1) if self.classes else x
        return self.net(h).reshape(-1)


class VAE(nn.Module):
    def __init__(self, latent=16, width=32):
        super().__init__()
        self.latent, self.width = latent, width
        self.enc1 = nn.Conv2d(1, width, 4, stride=2, padding=1)
        self.enc2 = nn.Conv2d(width, 2 * width, 4, stride=2, padding=1)
        self.encOut = nn.Linear(2 * width * 49, 2 * latent)
        self.decIn = nn.Linear(latent, 2 * width * 49)
        self.dec1 = nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1)
        self.dec2 = nn.ConvTranspose2d(width, 1, 4, stride=2, padding=1)

    def encode(self, x):
        h = self.enc2(self.enc1(x).relu()).relu()
        mu, logvar = self.encOut(h.flatten(1)).chunk(2, 1)
        return mu, logvar

    def decode(self, z):
        h = self.decIn(z).relu().reshape(z.shape[0], 2 * self.width, 7, 7)
        return self.dec2(self.dec1(h).relu())

    def forward(self, x, eps):
        mu, logvar = self.encode(x)
        z = mu + (logvar * 0.5).exp() * eps
        return self.decode(z), mu, logvar


def negative_elbo(out, x):
    logits, mu, logvar = out
    rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
    kl = (logvar + 1 - mu.square() - logvar.exp()).sum() * -0.5
    return (rec + kl) / x.shape[0]


class PositionalEmbedding(nn.Module):
    """retrograd's PositionalEmbedding: x + a learned embedding of each position (offset for cached steps)."""

    def __init__(self, max_len, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(max_len, dim))

    def forward(self, x, offset=0):
        return x + self.weight[offset:offset + x.shape[1]]


class Translator(nn.Module):
    def __init__(self, srcVocab, tgtVocab, dModel=64, nhead=4, layers=2, dimFeedforward=128, srcLen=12, tgtLen=12):
        super().__init__()
        self.srcEmbed = nn.Embedding(srcVocab, dModel)
        self.srcPos = PositionalEmbedding(srcLen, dModel)
        self.tgtEmbed = nn.Embedding(tgtVocab, dModel)
        self.tgtPos = PositionalEmbedding(tgtLen, dModel)
        self.transformer = nn.Transformer(d_model=dModel, nhead=nhead, num_encoder_layers=layers, num_decoder_layers=layers,
                                          dim_feedforward=dimFeedforward, dropout=0.0, batch_first=True, norm_first=True)
        self.generator = nn.Linear(dModel, tgtVocab)

    def encode(self, src):
        pad = src == 0
        return self.transformer.encoder(self.srcPos(self.srcEmbed(src)), src_key_padding_mask=pad), pad

    def decode(self, tgt, memory, pad):
        mask = nn.Transformer.generate_square_subsequent_mask(tgt.shape[1]).to(tgt.device)
        h = self.tgtPos(self.tgtEmbed(tgt))
        return self.generator(self.transformer.decoder(h, memory, tgt_mask=mask, memory_key_padding_mask=pad))

    def forward(self, src, tgt_in):
        memory, pad = self.encode(src)
        return self.decode(tgt_in, memory, pad)


def translation_loss(model, src, tgt):
    logits = model(src, tgt[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[2]), tgt[:, 1:].reshape(-1))
